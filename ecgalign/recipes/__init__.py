"""Packaged YAML recipes, one per method; each overrides the defaults in ecgalign.train.config."""
