"""Writing model packages from torch (see :mod:`pixelsep_plugin.modelstore.package` for loading).

A package is a folder::

    manifest.json        format, id, version, config, synthesizer alpha/beta, every file's sha256
    video.onnx           frames -> features          (see export_onnx)
    audio.onnx           log_magnitude -> components
    weights.safetensors  the torch state dict (for fine-tuning and load_torch_model; no pickle)
    CARD.md              what the model is, how it was trained, how well it separates

It is written into a hidden temporary folder beside ``out_dir`` and renamed into place only when
complete, so a reader never sees a half-written package.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import onnx
import safetensors
import torch
from safetensors.torch import load_file, save_file

from pixelsep_plugin.config import ModelConfig, get_model_config
from pixelsep_plugin.errors import ModelError
from pixelsep_plugin.export.onnx_export import AUDIO_FILE, OPSET, VIDEO_FILE, export_onnx
from pixelsep_plugin.modelstore.package import FORMAT, FORMAT_VERSION, MANIFEST, load_package, sha256_file
from pixelsep_plugin.nets.builders import PixelPlayer, build_pixelplayer

WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "CARD.md"
PACKAGE_FILES = (VIDEO_FILE, AUDIO_FILE, WEIGHTS_FILE, CARD_FILE)

UNTRAINED_WARNING = (
    "**Untrained: the weights are random.** This model does not separate anything; the masks it "
    "makes are arbitrary. It exists so that the whole pipeline (analysis, clicks, stems, heatmaps) "
    "can run and be tested before a trained model is installed."
)


def _config_summary(cfg: ModelConfig) -> str:
    v, a, f = cfg.video_net, cfg.audio_net, cfg.audio
    return (
        f"- configuration `{cfg.name}`: K = {cfg.num_components} components\n"
        f"- video net: dilated ResNet-18, widths {list(v.widths)}, output stride 16, "
        f"frame side {v.frame_size} px\n"
        f"- audio net: U-Net, {a.num_downs} levels, {a.base_channels} base channels\n"
        f"- audio front end: {f.sample_rate} Hz, n_fft {f.n_fft}, hop {f.hop_length}, "
        f"{f.log_freq_bins} log-frequency bins\n"
    )


def default_card(
    cfg: ModelConfig,
    model_id: str,
    version: str,
    trained: bool,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """A generated CARD.md (Markdown) for a package that was given no card text."""
    lines = [f"# {model_id} (version {version})", ""]
    if not trained:
        lines += [UNTRAINED_WARNING, ""]
    else:
        lines += ["Trained PixelPlayer model (\"The Sound of Pixels\", Zhao et al., ECCV 2018).", ""]
    lines += ["## Architecture", "", _config_summary(cfg)]
    if training:
        lines += ["## Training", ""] + [f"- {k}: {v}" for k, v in training.items()] + [""]
    if metrics:
        lines += ["## Metrics", ""] + [f"- {k}: {v}" for k, v in metrics.items()] + [""]
    elif trained:
        lines += ["## Metrics", "", "No metrics were recorded for this model.", ""]
    return "\n".join(lines)


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def _replace_folder(new: Path, target: Path) -> None:
    """Move the complete folder ``new`` to ``target``, replacing any folder there."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old / target.name, target)  # put the previous package back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_package(
    model: PixelPlayer,
    cfg: ModelConfig,
    out_dir: Path | str,
    model_id: str,
    version: str,
    trained: bool,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    card_text: str | None = None,
) -> Path:
    """Write ``model`` (built from ``cfg``) as a package folder at ``out_dir``; returns ``out_dir``.

    ``training`` and ``metrics`` are stored in the manifest as given (JSON-serialisable dicts, e.g.
    steps, data, seed; SDR/SIR/SAR). ``card_text`` is CARD.md's Markdown; without it a card is
    generated (for ``trained=False`` it says plainly that the weights are random and the model
    separates nothing). An existing folder at ``out_dir`` is replaced once the new one is complete.
    """
    if model.cfg != cfg:
        raise ValueError(f"the model was built from config {model.cfg.name!r}, not from the config given")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp.", dir=out_dir.parent))
    try:
        export_onnx(model, cfg, work)
        state = {name: value.detach().contiguous().cpu() for name, value in model.state_dict().items()}
        save_file(state, str(work / WEIGHTS_FILE))
        card = card_text or default_card(cfg, model_id, version, trained, training, metrics)
        (work / CARD_FILE).write_text(card, encoding="utf-8")
        synthesizer = model.synthesizer
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "id": model_id,
            "version": version,
            "trained": bool(trained),
            "config": cfg.to_dict(),
            "synthesizer": {
                "alpha": [float(a) for a in synthesizer.alpha.detach().cpu().tolist()],
                "beta": float(synthesizer.beta.detach().cpu()[0]),
            },
            "files": {name: _file_entry(work / name) for name in PACKAGE_FILES},
            "training": training,
            "metrics": metrics,
            "software": {
                "torch": torch.__version__,
                "onnx": onnx.__version__,
                "safetensors": safetensors.__version__,
                "python": platform.python_version(),
                "onnx_opset": OPSET,
            },
            "created": datetime.datetime.now(datetime.UTC).date().isoformat(),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.chmod(work, 0o755)  # mkdtemp made it private; a model folder is readable like any other
        _replace_folder(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


def load_torch_model(package_dir: Path | str) -> PixelPlayer:
    """Rebuild a package's torch model (eval mode) from its manifest config and safetensors weights.

    The package is checked first (every file's size and sha256, ModelError on a mismatch); the
    weights are read with safetensors (no pickle) and must match the config's nets exactly.
    """
    package = load_package(package_dir)
    weights = package.path / WEIGHTS_FILE
    if WEIGHTS_FILE not in package.manifest["files"]:
        raise ModelError(f"model {package.path.name} has no {WEIGHTS_FILE}: it cannot be loaded into torch")
    model = PixelPlayer(package.config)
    state = load_file(str(weights))
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ModelError(
            f"model {package.path.name}: {WEIGHTS_FILE} does not fit its config ({len(missing)} tensors missing, "
            f"e.g. {missing[:1]}; {len(unexpected)} unexpected, e.g. {unexpected[:1]}; {len(wrong)} of another "
            f"shape, e.g. {wrong[:1]}): it was written by another version of pixelsep; rebuild the model"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_untrained(config_name: str, out_dir: Path | str, seed: int = 0, model_id: str | None = None) -> Path:
    """Write a package of the named configuration with seeded random weights; returns its folder.

    The id defaults to ``f"{config_name}-untrained"`` and the version to ``f"0-seed{seed}"``. The
    same seed gives the same ONNX and weight files.
    """
    cfg = get_model_config(config_name)
    model_id = model_id or f"{config_name}-untrained"
    model = build_pixelplayer(cfg, seed=seed).eval()
    card = default_card(cfg, model_id, f"0-seed{seed}", trained=False, training={"seed": seed, "steps": 0})
    card += (
        f"\nBuilt by `python -m pixelsep_plugin.export.build_untrained --config {config_name} "
        f"--seed {seed}`.\n"
    )
    return write_package(
        model,
        cfg,
        out_dir,
        model_id,
        version=f"0-seed{seed}",
        trained=False,
        training={"seed": seed, "steps": 0},
        card_text=card,
    )
