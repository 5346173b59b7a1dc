"""Model packages on the inference path (numpy and json only, never torch, never pickle).

A package is a folder with ``video.onnx``, ``audio.onnx``, ``weights.safetensors``, ``CARD.md`` and
``manifest.json``, which lists every other file with its sha256 and size. Loading checks them all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelsep_plugin.config import ModelConfig, model_config_from_dict
from pixelsep_plugin.errors import ModelError

MANIFEST = "manifest.json"
FORMAT = "pixelsep-model"
FORMAT_VERSION = 1
REQUIRED_FILES = ("video.onnx", "audio.onnx")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    path: Path
    manifest: dict
    config: ModelConfig
    model_id: str
    version: str
    trained: bool
    checksum: str  # sha256 of manifest.json, which holds every file's sha256
    alpha: np.ndarray  # synthesizer weights, float32 (K,)
    beta: float

    @property
    def video_onnx(self) -> Path:
        return self.path / "video.onnx"

    @property
    def audio_onnx(self) -> Path:
        return self.path / "audio.onnx"


def load_package(path: Path | str, verify: bool = True) -> ModelPackage:
    """Read a package's manifest and check every file's size and sha256 (ModelError on any problem)."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{path} is not a pixelsep model: it has no {MANIFEST}")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError("unknown format")
        files = manifest["files"]
        config = model_config_from_dict(manifest["config"])
        alpha = np.asarray(manifest["synthesizer"]["alpha"], dtype=np.float32)
        beta = float(manifest["synthesizer"]["beta"])
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{manifest_path} is not a valid pixelsep model manifest ({error})") from None
    for name in REQUIRED_FILES:
        if name not in files:
            raise ModelError(f"{manifest_path} lists no {name}: rebuild or reinstall the model")
    if alpha.shape != (config.num_components,):
        raise ModelError(f"{manifest_path}: synthesizer alpha has {alpha.size} values, K is {config.num_components}")
    if verify:
        for name, entry in files.items():
            file = path / name
            if not file.is_file():
                raise ModelError(f"model {path.name}: {name} is missing: rebuild or reinstall the model")
            size = file.stat().st_size
            if size != entry["bytes"]:
                raise ModelError(
                    f"model {path.name}: {name} has {size} bytes, the manifest says {entry['bytes']}: "
                    "rebuild or reinstall the model"
                )
            if sha256_file(file) != entry["sha256"]:
                raise ModelError(f"model {path.name}: {name} fails its sha256 check: rebuild or reinstall the model")
    return ModelPackage(
        path=path,
        manifest=manifest,
        config=config,
        model_id=str(manifest["id"]),
        version=str(manifest["version"]),
        trained=bool(manifest.get("trained", False)),
        checksum=hashlib.sha256(raw).hexdigest(),
        alpha=alpha,
        beta=beta,
    )
