"""Model packages: loading with checksums (no torch) and the registry of installed models."""

from pixelsep_plugin.modelstore.package import ModelPackage, load_package, sha256_file

__all__ = ["ModelPackage", "load_package", "sha256_file"]
