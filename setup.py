"""The package list, which pyproject.toml cannot express: the discovered code packages and
``pixelsep_models``, the repository's ``models/`` folder (mapped and filtered in pyproject.toml)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["pixelsep_plugin*", "host_bridge*"]), "pixelsep_models"])
