"""Where model packages are found, and which one is the default.

A model is named by a folder path or by its id. Ids are looked up, in order, in the folders listed
in ``$PIXELSEP_MODELS`` (separated by ``os.pathsep``) and in the project's ``models/`` folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelsep_plugin.errors import ModelError

# Tried in order when no model is named; the first one present is used.
DEFAULT_MODEL_IDS = ("pixelsep-small", "small-untrained")


def model_folders() -> list[Path]:
    folders = [Path(p) for p in os.environ.get("PIXELSEP_MODELS", "").split(os.pathsep) if p]
    folders.append(Path(__file__).resolve().parents[2] / "models")
    return folders


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
            "run `make model` or pass --model PATH"
        )
    raise ModelError(f"model {name!r} not found (installed: {known}); pass a model folder path or an installed id")
