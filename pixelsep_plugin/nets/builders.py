"""Building PixelPlayer's three nets from a ModelConfig (an explicit registry, name -> builder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from pixelsep_plugin.config import ModelConfig
from pixelsep_plugin.nets.synthesizer import Synthesizer
from pixelsep_plugin.nets.unet import AudioUNet
from pixelsep_plugin.nets.video import VideoNet


def _build_video(cfg: ModelConfig) -> nn.Module:
    return VideoNet(cfg.video_net)


def _build_audio(cfg: ModelConfig) -> nn.Module:
    return AudioUNet(cfg.audio_net)


def _build_synthesizer(cfg: ModelConfig) -> nn.Module:
    return Synthesizer(cfg.num_components)


NET_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "video": _build_video,
    "audio": _build_audio,
    "synthesizer": _build_synthesizer,
}


class PixelPlayer(nn.Module):
    """The three nets of one model: ``video_net``, ``audio_net`` and ``synthesizer``.

    It has no forward of its own: training and export call the nets separately (see their
    docstrings for shapes). ``cfg`` is the configuration it was built from.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.video_net = cast(VideoNet, NET_BUILDERS["video"](cfg))
        self.audio_net = cast(AudioUNet, NET_BUILDERS["audio"](cfg))
        self.synthesizer = cast(Synthesizer, NET_BUILDERS["synthesizer"](cfg))


def build_pixelplayer(cfg: ModelConfig, seed: int | None = None) -> PixelPlayer:
    """The three nets with fresh weights; with ``seed`` they are reproducible (the global RNG is untouched)."""
    if seed is None:
        return PixelPlayer(cfg)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return PixelPlayer(cfg)
