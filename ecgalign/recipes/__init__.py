"""Packaged YAML recipes, one per method, and their typed schema (``ecgalign.recipes.schema``): each YAML
overrides only what differs from the schema's defaults."""
