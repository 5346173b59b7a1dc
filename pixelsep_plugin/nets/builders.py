"""Building the three nets from a ModelConfig (an explicit registry, name -> builder)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pixelsep_plugin.config import ModelConfig
from pixelsep_plugin.nets.synthesizer import Synthesizer
from pixelsep_plugin.nets.unet import AudioUNet
from pixelsep_plugin.nets.video import VideoNet

NET_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "video": lambda cfg: VideoNet(cfg.video_net),
    "audio": lambda cfg: AudioUNet(cfg.audio_net),
    "synthesizer": lambda cfg: Synthesizer(cfg.num_components),
}


class PixelPlayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.video_net = NET_BUILDERS["video"](cfg)
        self.audio_net = NET_BUILDERS["audio"](cfg)
        self.synthesizer = NET_BUILDERS["synthesizer"](cfg)


def build_pixelplayer(cfg: ModelConfig, seed: int | None = None) -> PixelPlayer:
    """The three nets; with ``seed`` their initial weights are reproducible."""
    if seed is None:
        return PixelPlayer(cfg)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return PixelPlayer(cfg)
