"""Zero-shot prompt data: one YAML file per dataset, read by ``ecgalign.text.prompts``."""
