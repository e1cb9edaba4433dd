"""The package version, importable without importing the package facade (``ecgalign/__init__.py``)."""

__version__ = "0.1.0"
