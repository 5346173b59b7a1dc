"""A training run, fully described by one dataclass, read from a TOML or JSON file.

Every field has a default; a config file gives only what differs. The resolved config (with the
model configuration it builds) is written into the run folder as ``config.json`` so that a run can
be repeated exactly. Paths in a config file are relative to the file's folder.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelsep_plugin.config import ModelConfig, get_model_config, model_config_from_dict

MASKS = ("binary", "ratio")


@dataclass(frozen=True)
class TrainConfig:
    run_dir: str = "runs/default"
    train_dirs: tuple[str, ...] = ("data/train",)
    val_dirs: tuple[str, ...] = ("data/val",)
    model: str = "small"  # a named configuration in pixelsep_plugin.config.MODEL_CONFIGS
    # nested overrides of the named configuration, e.g. {"num_components": 8, "chunks": {...}}
    model_overrides: dict[str, Any] = field(default_factory=dict)
    model_id: str = "pixelsep-small"
    model_version: str = "1"
    num_mix: int = 2  # clips mixed per training example (2 or 3)
    mix_sizes: tuple[int, ...] = ()  # when given, each batch mixes a number of clips drawn from these (e.g. [2, 3])
    # train as you click: the clips of a mix composed into one picture, each clip's K-vector read
    # where a click inside its performer reads it (video_net.click_reach_cells around the point)
    composite: bool = False
    init_from: str = ""  # a model package whose weights the run starts from (same nets)
    mask: str = "binary"  # "binary": weighted BCE on the dominant source; "ratio": weighted L1 on mag_n / mag_mix
    batch_size: int = 8  # mixes per step and process
    steps: int = 4000
    # > 0: the run also ends after this many minutes of training steps, whichever comes first; the
    # learning-rate drops then fall at fractions of the run's progress (steps or time, the further)
    minutes: float = 0.0
    learning_rate: float = 1e-3
    video_learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    lr_drop_at: tuple[float, ...] = (0.6, 0.85)  # fractions of `steps` where the learning rate drops 10x
    gain_range: tuple[float, float] = (0.5, 1.5)  # random gain of each clip in a mix
    frames_per_second: float = 2.0  # frames decoded per second of video into the sample cache
    seed: int = 0
    log_every: int = 10
    val_every: int = 250
    val_mixes: int = 96
    checkpoint_every: int = 50
    batchnorm_batches: int = 20  # training batches that set BatchNorm statistics before validation and export
    cache_dir: str = ""  # decoded-sample cache ("" = ~/.cache/pixelsep/train-samples)
    threads: int = 0  # torch CPU threads per process (0 = torch's default)
    device: str = "auto"  # "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu" or "cuda"

    def __post_init__(self) -> None:
        if self.mask not in MASKS:
            raise ValueError(f"mask must be one of {', '.join(MASKS)}, not {self.mask!r}")
        if self.num_mix not in (2, 3):
            raise ValueError(f"num_mix must be 2 or 3, not {self.num_mix}")
        if any(n not in (2, 3) for n in self.mix_sizes):
            raise ValueError(f"mix_sizes must hold 2 and/or 3, not {list(self.mix_sizes)}")
        if self.batch_size <= 0 or self.steps <= 0:
            raise ValueError("batch_size and steps must be positive")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, not {self.device!r}")
        if not self.train_dirs:
            raise ValueError("train_dirs is empty: give at least one folder of clips")

    def model_config(self) -> ModelConfig:
        """The named configuration with ``model_overrides`` applied (nested dicts merge)."""
        base = get_model_config(self.model).to_dict()

        def merge(into: dict, extra: dict) -> dict:
            for key, value in extra.items():
                if key not in into:
                    raise ValueError(f"model_overrides: unknown field {key!r}")
                into[key] = merge(dict(into[key]), value) if isinstance(value, dict) else value
            return into

        data = merge(base, self.model_overrides)
        k = data["num_components"]  # one K for all three nets
        data["video_net"]["num_components"] = data["audio_net"]["num_components"] = k
        return model_config_from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(cls, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown training setting {unknown[0]!r}; known: {', '.join(names)}")
    out = {}
    for key, value in data.items():
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def load_train_config(path: Path | str, **overrides: Any) -> TrainConfig:
    """Read a .toml or .json config; relative paths are taken from the file's folder."""
    path = Path(path)
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    data.update({k: v for k, v in overrides.items() if v is not None})
    data = _coerce(TrainConfig, data)
    base = path.resolve().parent

    def rebase(p: str) -> str:
        return p if not p or Path(p).is_absolute() else str(base / p)

    for key in ("train_dirs", "val_dirs"):
        if key in data:
            data[key] = tuple(rebase(p) for p in data[key])
    for key in ("run_dir", "cache_dir", "init_from"):
        if key in data:
            data[key] = rebase(data[key])
    return TrainConfig(**data)
