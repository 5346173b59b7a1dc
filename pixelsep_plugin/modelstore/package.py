"""Model packages on the inference path (numpy, json and hashlib only: never torch, never pickle).

A package is a folder with ``video.onnx``, ``audio.onnx``, ``weights.safetensors``, ``CARD.md`` and
``manifest.json``; the manifest lists every other file with its sha256 and size in bytes, so the
sha256 of the manifest's own bytes identifies the whole package. Loading checks every listed file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelsep_plugin.config import ModelConfig, model_config_from_dict
from pixelsep_plugin.errors import ModelError

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few KB; anything near this is not one
FORMAT = "pixelsep-model"
FORMAT_VERSION = 1
REQUIRED_FILES = ("video.onnx", "audio.onnx")
FIX = "rebuild or reinstall the model"


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    """A checked model package folder and what its manifest says.

    ``checksum`` is the sha256 of manifest.json's bytes (it covers every file's sha256, so it names
    the package's exact contents); ``alpha`` float32 (K,) and ``beta`` are the synthesizer's
    parameters, used by numpy at inference: mask logits = sum_k alpha_k * v_k * s_k + beta.
    """

    path: Path
    manifest: dict[str, Any]
    config: ModelConfig
    model_id: str
    version: str
    trained: bool
    checksum: str
    alpha: np.ndarray
    beta: float

    @property
    def video_onnx(self) -> Path:
        """frames float32 (N, 3, H, W) RGB in [0, 1] -> features float32 (N, K, ceil(H/16), ceil(W/16))."""
        return self.path / "video.onnx"

    @property
    def audio_onnx(self) -> Path:
        """log_magnitude float32 (N, 1, F, T) -> components float32 (N, K, F, T)."""
        return self.path / "audio.onnx"


def _parse_manifest(raw: bytes, where: Path) -> tuple[dict[str, Any], ModelConfig, np.ndarray, float]:
    """(manifest, config, alpha, beta) from manifest.json's bytes; ModelError (one line) if malformed."""
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format is {manifest.get('format')!r}, not {FORMAT!r}")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version {manifest.get('format_version')!r} is not {FORMAT_VERSION}")
        missing = [key for key in ("id", "version", "config", "synthesizer", "files") if key not in manifest]
        if missing:
            raise ValueError(f"no {missing[0]!r} entry")
        files = manifest["files"]
        if not isinstance(files, dict) or not all(isinstance(e, dict) for e in files.values()):
            raise ValueError("'files' is not a table of name -> {sha256, bytes}")
        config = model_config_from_dict(manifest["config"])
        alpha = np.asarray(manifest["synthesizer"]["alpha"], dtype=np.float32)
        beta = float(manifest["synthesizer"]["beta"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        detail = f"no {error} entry" if isinstance(error, KeyError) else (str(error).splitlines() or [""])[0]
        raise ModelError(f"{where} is not a valid pixelsep model manifest ({detail}): {FIX}") from None
    if alpha.shape != (config.num_components,):
        raise ModelError(
            f"{where}: synthesizer alpha has {alpha.size} values but K is {config.num_components}: {FIX}"
        )
    for name in REQUIRED_FILES:
        if name not in files:
            raise ModelError(f"{where} lists no {name}: {FIX}")
    for name in files:
        if not isinstance(name, str) or Path(name).name != name or name in (".", "..", MANIFEST):
            raise ModelError(f"{where} lists a file {name!r} that is not a plain file name in the package: {FIX}")
    return manifest, config, alpha, beta


def _check_file(folder: Path, name: str, entry: dict[str, Any], hash_it: bool) -> None:
    """ModelError (one line) unless ``folder / name`` exists with the manifest's size (and sha256)."""
    file = folder / name
    label = f"model {folder.name}: {name}"
    if not file.is_file():
        raise ModelError(f"{label} is missing: {FIX}")
    try:
        expected_bytes, expected_sha = int(entry["bytes"]), str(entry["sha256"]).lower()
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{label} has no valid size and sha256 in {MANIFEST}: {FIX}") from None
    size = file.stat().st_size
    if size != expected_bytes:
        raise ModelError(f"{label} should be {expected_bytes} bytes but is {size} bytes: {FIX}")
    if hash_it:
        found = sha256_file(file)
        if found != expected_sha:
            raise ModelError(
                f"{label} fails its checksum (expected sha256 {expected_sha[:16]}..., found {found[:16]}...): {FIX}"
            )


def load_package(path: Path | str, verify: bool = True) -> ModelPackage:
    """Read and check the model package folder at ``path``.

    Checks that the folder and its manifest exist, that the manifest is well formed (format,
    config, synthesizer, file table), and that every listed file exists with the listed size and,
    when ``verify`` is true (the default), the listed sha256. Any problem raises :class:`ModelError`
    with one line naming the file, the expected and found values, and the fix. Nothing is unpickled.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model folder {path} does not exist")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{path} is not a pixelsep model: it has no {MANIFEST}")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ModelError(f"{manifest_path} is larger than {MAX_MANIFEST_BYTES // 1024} KiB: not a pixelsep manifest: {FIX}")
    raw = manifest_path.read_bytes()
    manifest, config, alpha, beta = _parse_manifest(raw, manifest_path)
    for name, entry in manifest["files"].items():
        _check_file(path, name, entry, hash_it=verify)
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
