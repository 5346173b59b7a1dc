"""ResNet-18 in plain torch, with the parameter names of the common ImageNet checkpoint files.

Layer 4 is dilated instead of strided (as in PixelPlayer), so the output stride is 16 and a 224-pixel
frame gives a 14x14 map. Channel widths come from the config; with the ImageNet widths
(64, 64, 128, 256, 512) a torchvision-style ``resnet18`` state dict loads as is (its ``fc.*`` is
dropped).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pixelsep_plugin.errors import ModelError


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int = 1, dilation: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=dilation[0], dilation=dilation[0], bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, padding=dilation[1], dilation=dilation[1], bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class DilatedResNet18(nn.Module):
    """x: (N, 3, H, W) normalised RGB -> (N, widths[4], ceil(H/16), ceil(W/16))."""

    def __init__(self, widths: tuple[int, int, int, int, int]):
        super().__init__()
        stem, w1, w2, w3, w4 = widths
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(stem, w1), BasicBlock(w1, w1))
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, stride=2), BasicBlock(w2, w2))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, stride=2), BasicBlock(w3, w3))
        # dilated: stride 1; the first conv keeps dilation 1, later 3x3 convs use 2
        self.layer4 = nn.Sequential(BasicBlock(w3, w4, stride=1, dilation=(1, 2)), BasicBlock(w4, w4, dilation=(2, 2)))
        self.out_channels = w4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def load_imagenet_weights(trunk: DilatedResNet18, path: Path | str) -> None:
    """Load an ImageNet ResNet-18 state dict (torchvision names) into ``trunk``; ``fc.*`` is dropped.

    The file is read with ``weights_only=True`` (no arbitrary unpickling).
    """
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable files
        raise ModelError(f"cannot read ResNet-18 weights from {path}: {str(error).splitlines()[0]}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = trunk.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise ModelError(
            f"{Path(path).name} is not a ResNet-18 state dict (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for name, value in state.items():
        if value.shape != own[name].shape:
            raise ModelError(
                f"{Path(path).name}: {name} has shape {tuple(value.shape)}, the net has {tuple(own[name].shape)}: "
                "ImageNet weights need the ImageNet widths (the `paper` config)"
            )
    trunk.load_state_dict(state, strict=True)
