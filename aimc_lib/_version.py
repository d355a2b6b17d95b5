"""The package version, in one place (read by ``pyproject.toml`` and by every provenance record)."""
__version__ = "0.2.0"
