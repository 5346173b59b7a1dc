"""The video net: per-pixel K-vectors (sigmoid) from RGB frames."""

from __future__ import annotations

import torch
from torch import nn

from pixelsep_plugin.config import VideoNetConfig
from pixelsep_plugin.nets.resnet import DilatedResNet18

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VideoNet(nn.Module):
    """frames: (N, 3, H, W) float RGB in [0, 1] -> features (N, K, ceil(H/16), ceil(W/16)) in (0, 1)."""

    def __init__(self, cfg: VideoNetConfig):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.trunk = DilatedResNet18(cfg.widths)
        self.head = nn.Conv2d(self.trunk.out_channels, cfg.num_components, 3, padding=1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.trunk((frames - self.mean) / self.std)))


def pool_clip(features: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
    """Training pooling: (N * frames, K, h, w) -> (N, K), max over space, then over a clip's frames."""
    spatial = torch.amax(features, dim=(2, 3))
    return torch.amax(spatial.view(-1, frames_per_clip, spatial.shape[1]), dim=1)
