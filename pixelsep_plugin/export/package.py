"""Writing model packages from torch (see :mod:`pixelsep_plugin.modelstore.package` for loading)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pixelsep_plugin.config import ModelConfig, get_model_config, model_config_from_dict
from pixelsep_plugin.export.onnx_export import export_onnx
from pixelsep_plugin.modelstore.package import FORMAT, FORMAT_VERSION, MANIFEST, sha256_file
from pixelsep_plugin.nets.builders import PixelPlayer, build_pixelplayer

UNTRAINED_CARD = """# {model_id}

**Untrained.** This package holds the `{config}` architecture of pixelsep with seeded random
weights (seed {seed}). It does not separate anything: its masks are arbitrary. It exists so that the
whole pipeline (analysis, clicks, stems, heatmaps) can run and be tested before a trained model is
installed. Built by `python -m pixelsep_plugin.export.build_untrained --config {config}`.
"""


def write_package(
    model: PixelPlayer,
    out_dir: Path | str,
    model_id: str,
    version: str,
    trained: bool,
    training: dict | None = None,
    metrics: dict | None = None,
    card_text: str | None = None,
) -> Path:
    """Write a model package folder (replacing ``out_dir`` only once it is complete)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        export_onnx(model, work)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(work / "weights.safetensors"))
        card = card_text or f"# {model_id}\n\n{'Trained' if trained else 'Untrained'} pixelsep model.\n"
        (work / "CARD.md").write_text(card)
        files = {
            name: {"sha256": sha256_file(work / name), "bytes": (work / name).stat().st_size}
            for name in ("video.onnx", "audio.onnx", "weights.safetensors", "CARD.md")
        }
        synth = model.synthesizer
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "id": model_id,
            "version": version,
            "trained": trained,
            "config": model.cfg.to_dict(),
            "synthesizer": {"alpha": synth.alpha.detach().tolist(), "beta": float(synth.beta.detach()[0])},
            "files": files,
            "training": training or {},
            "metrics": metrics or {},
            "software": {"torch": torch.__version__, "python": platform.python_version()},
            "created": datetime.date.today().isoformat(),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1))
        os.chmod(work, 0o755)  # mkdtemp made it private; a model folder is readable like any other
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


def load_torch_model(package_dir: Path | str) -> PixelPlayer:
    """Rebuild the torch model of a package from its manifest config and safetensors weights."""
    package_dir = Path(package_dir)
    manifest = json.loads((package_dir / MANIFEST).read_text())
    model = PixelPlayer(model_config_from_dict(manifest["config"]))
    model.load_state_dict(load_file(str(package_dir / "weights.safetensors")), strict=True)
    return model.eval()


def build_untrained(config_name: str, out_dir: Path | str, seed: int = 0, model_id: str | None = None) -> Path:
    """A seeded random model of a named configuration, written as a package."""
    cfg: ModelConfig = get_model_config(config_name)
    model_id = model_id or f"{config_name}-untrained"
    model = build_pixelplayer(cfg, seed=seed).eval()
    card = UNTRAINED_CARD.format(model_id=model_id, config=config_name, seed=seed)
    return write_package(
        model,
        out_dir,
        model_id,
        version=f"0-seed{seed}",
        trained=False,
        training={"seed": seed, "steps": 0},
        card_text=card,
    )
