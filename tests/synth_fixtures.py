"""A tiny synthetic world for the generator, trainer and evaluation tests (two instruments, small clips)."""

from __future__ import annotations

from pathlib import Path

from pixelsep_plugin.synth.generate import SynthSettings, generate_set, make_clip
from pixelsep_plugin.synth.instruments import get_instruments

TINY = SynthSettings(width=128, height=96, fps=12, seconds=7.0, generated_share=1.0)
TINY_INSTRUMENTS = get_instruments(["flute", "drum"])

TINY_MODEL = {
    "num_components": 8,
    "video_net": {"widths": [8, 8, 16, 32, 64], "frame_size": 64, "frames_per_window": 1},
    "audio_net": {"num_downs": 5, "base_channels": 8},
    "chunks": {"window_columns": 128, "overlap_columns": 32},
}


def make_tiny_world(root: Path) -> dict[str, Path]:
    """Solo training and validation clips and one test duet under ``root``."""
    dirs = {name: root / name for name in ("train", "val", "test")}
    generate_set(dirs["train"], "solo", "train", 8, TINY, TINY_INSTRUMENTS, workers=1)
    generate_set(dirs["val"], "solo", "val", 4, TINY, TINY_INSTRUMENTS, workers=1)
    make_clip(dirs["test"], "duet-test", "duet", "test", 2_000_000, TINY, TINY_INSTRUMENTS)
    return dirs
