"""The video net: a K-vector in (0, 1) for every 16x16-pixel cell of a frame."""

from __future__ import annotations

import torch
from torch import nn

from pixelsep_plugin.config import VideoNetConfig
from pixelsep_plugin.nets.resnet import DilatedResNet18

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OUTPUT_STRIDE = 16


class VideoNet(nn.Module):
    """frames (N, 3, H, W) float32 RGB in [0, 1] -> features (N, K, ceil(H / 16), ceil(W / 16)) in (0, 1).

    The ImageNet mean/std normalisation happens inside the net (so it is part of the exported
    graph); then the dilated ResNet-18 trunk, a 3x3 conv (with bias) to K channels, and a sigmoid.
    Feature ``[n, :, i, j]`` describes the pixels around ``(16 * i + 8, 16 * j + 8)``.
    """

    def __init__(self, cfg: VideoNetConfig) -> None:
        super().__init__()
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        # (x - mean) / std as one multiply-add; constants, not weights (not in the state dict)
        self.register_buffer("input_scale", 1.0 / std, persistent=False)
        self.register_buffer("input_shift", -mean / std, persistent=False)
        self.trunk = DilatedResNet18(cfg.widths)
        self.head = nn.Conv2d(self.trunk.out_channels, cfg.num_components, 3, padding=1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames * self.input_scale + self.input_shift
        return torch.sigmoid(self.head(self.trunk(x)))


def pool_clip(features: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
    """Training pooling of the video features to one K-vector per clip.

    features: (N * frames_per_clip, K, h, w), the frames of clip ``n`` at rows
    ``[n * frames_per_clip, (n + 1) * frames_per_clip)``. Max over space (h, w), then max over the
    clip's frames. Returns (N, K).
    """
    if features.ndim != 4:
        raise ValueError(f"pool_clip expects (N * frames, K, h, w) features, got shape {tuple(features.shape)}")
    if frames_per_clip <= 0 or features.shape[0] % frames_per_clip:
        raise ValueError(f"{features.shape[0]} feature rows are not a whole number of {frames_per_clip}-frame clips")
    spatial = torch.amax(features, dim=(2, 3))  # (N * frames, K)
    return torch.amax(spatial.view(-1, frames_per_clip, spatial.shape[1]), dim=1)


def pool_cells(features: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Training pooling as a click reads the features: each clip's K-vector is the max over its
    clicked cells and over the frames.

    features: (B, F, K, h, w), one composite picture per frame holding every clip of a mix;
    cells: bool (B, N, F, h, w), the cells clip ``n`` is clicked at in each frame (at least one per
    frame). Returns (B, N, K).
    """
    if features.ndim != 5 or cells.ndim != 5 or cells.shape[0] != features.shape[0] or cells.shape[2:] != (
        features.shape[1], features.shape[3], features.shape[4]
    ):
        raise ValueError(f"pool_cells expects (B, F, K, h, w) features and (B, N, F, h, w) cells, got "
                         f"{tuple(features.shape)} and {tuple(cells.shape)}")  # fmt: skip
    # features are sigmoids in (0, 1): cells outside the click get -1 and never win the max
    picked = torch.where(cells[:, :, :, None], features[:, None], features.new_tensor(-1.0))  # (B, N, F, K, h, w)
    return picked.amax(dim=(2, 4, 5))
