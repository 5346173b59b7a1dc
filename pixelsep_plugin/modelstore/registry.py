"""Where model packages are found, and which one is the default.

A model is named by a folder path or by its id. Ids are looked up, in order, in the folders listed
in ``$PIXELSEP_MODELS`` (separated by ``os.pathsep``), in the ``models/`` folder of a repository
checkout, and in the installed package ``pixelsep_models`` (the default model, shipped in the wheel).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pixelsep_plugin.errors import ModelError

# Tried in order when no model is named; the first one present is used.
DEFAULT_MODEL_IDS = ("pixelsep-small", "small-untrained")
# The package that holds the shipped models in an installed wheel (the repository's models/ folder).
MODELS_PACKAGE = "pixelsep_models"


def _repository_models() -> list[Path]:
    """The checkout's models/ folder; none when pixelsep runs from an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return [root / "models"] if (root / "pyproject.toml").is_file() else []


def _package_models() -> list[Path]:
    """The folders of the installed ``pixelsep_models`` package (a namespace package: no __init__.py)."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return []
    return [Path(p) for p in spec.submodule_search_locations if Path(p).is_dir()]


def model_folders() -> list[Path]:
    """The folders that hold model packages, in lookup order, each once."""
    folders = [Path(p) for p in os.environ.get("PIXELSEP_MODELS", "").split(os.pathsep) if p]
    folders += _repository_models() + _package_models()
    unique: list[Path] = []
    for folder in folders:
        if all(folder.resolve() != seen.resolve() for seen in unique):
            unique.append(folder)
    return unique


def available_models() -> dict[str, Path]:
    """id -> package folder, for every folder with a manifest.json (first folder wins)."""
    found: dict[str, Path] = {}
    for folder in model_folders():
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                if (child / "manifest.json").is_file():
                    found.setdefault(child.name, child)
    return found


def resolve_model(name: str | Path | None = None) -> Path:
    """The package folder for a path, an id, or (``None``) the default model."""
    if name is not None and (Path(name) / "manifest.json").is_file():
        return Path(name)
    models = available_models()
    wanted = DEFAULT_MODEL_IDS if name is None else (str(name),)
    for model_id in wanted:
        if model_id in models:
            return models[model_id]
    known = ", ".join(sorted(models)) or "none"
    if name is None:
        raise ModelError(
            f"no default model found (looked for {', '.join(DEFAULT_MODEL_IDS)}; installed: {known}); "
            "pass --model PATH or set PIXELSEP_MODELS to a folder of model packages"
        )
    raise ModelError(f"model {name!r} not found (installed: {known}); pass a model folder path or an installed id")
