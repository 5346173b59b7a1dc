"""ResNet-18 in plain torch, with the parameter names of the common ImageNet checkpoint files.

The module tree mirrors torchvision's ``resnet18`` (``conv1``, ``bn1``, ``layer1`` .. ``layer4`` of
two :class:`BasicBlock` each, ``downsample.0`` / ``downsample.1`` in the first block of layers 2-4),
so its ``state_dict`` keys are exactly those of the usual ImageNet checkpoint less the classifier
``fc.weight`` / ``fc.bias``, which the trunk does not have (PixelPlayer puts its own conv head on
the feature map). The channel widths come from the config; only the ImageNet widths
(64, 64, 128, 256, 512) can load ImageNet weights.

Layer 4 is dilated instead of strided (as in PixelPlayer, after the dilated ResNets of semantic
segmentation): its first 3x3 conv and its downsample conv have stride 1, the first 3x3 conv keeps
dilation 1 (it is the conv that used to stride) and the other three 3x3 convs have dilation 2. The
output stride is therefore 16: a 224-pixel frame gives a 14x14 map, and every stride-2 stage
rounds up, so (H, W) -> (ceil(H / 16), ceil(W / 16)).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pixelsep_plugin.errors import ModelError

IMAGENET_WIDTHS = (64, 64, 128, 256, 512)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 conv without bias whose padding keeps the size (up to the stride)."""
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and a residual connection.

    x: (N, in_channels, H, W) -> (N, channels, ceil(H / stride), ceil(W / stride)).
    ``dilations`` are those of ``conv1`` and ``conv2``. A 1x1 conv + BatchNorm (``downsample``)
    projects the identity when the stride or the channel count changes.
    """

    def __init__(
        self, in_channels: int, channels: int, stride: int = 1, dilations: tuple[int, int] = (1, 1)
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride, dilations[0])
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(channels, channels, 1, dilations[1])
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class DilatedResNet18(nn.Module):
    """The ResNet-18 trunk with a dilated layer 4.

    x: (N, 3, H, W) normalised RGB (ImageNet mean/std) -> (N, widths[4], ceil(H / 16), ceil(W / 16)).
    No pooling and no classifier: the output is the stride-16 feature map.
    """

    def __init__(self, widths: tuple[int, int, int, int, int] = IMAGENET_WIDTHS) -> None:
        super().__init__()
        if len(widths) != 5 or any(int(w) <= 0 for w in widths):
            raise ValueError(f"widths must be 5 positive channel counts (stem, layer1..layer4), got {widths}")
        stem, w1, w2, w3, w4 = (int(w) for w in widths)
        self.widths = (stem, w1, w2, w3, w4)
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(stem, w1), BasicBlock(w1, w1))
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, stride=2), BasicBlock(w2, w2))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, stride=2), BasicBlock(w3, w3))
        self.layer4 = nn.Sequential(
            BasicBlock(w3, w4, stride=1, dilations=(1, 2)), BasicBlock(w4, w4, dilations=(2, 2))
        )

    @property
    def out_channels(self) -> int:
        return self.widths[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def load_imagenet_weights(trunk: DilatedResNet18, path: Path | str) -> None:
    """Load an ImageNet ResNet-18 state dict (torchvision names) into ``trunk``.

    The file is read with ``torch.load(..., weights_only=True)`` (no arbitrary unpickling). A
    ``{"state_dict": ...}`` wrapper is accepted. The checkpoint's ``fc.*`` (the 1000-class
    classifier) is dropped; every other name must match the trunk's with the same shape (strict),
    else :class:`ModelError` (one line) and nothing is loaded.
    """
    path = Path(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for missing or unreadable files
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise ModelError(f"cannot read ResNet-18 weights from {path}: {first}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path.name} is not a ResNet-18 state dict (expected a dict of name -> tensor)")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = trunk.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelError(
            f"{path.name} is not a ResNet-18 state dict ({len(missing)} names missing, e.g. {missing[:2]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    for name, value in state.items():
        if value.shape != own[name].shape:
            raise ModelError(
                f"{path.name}: {name} has shape {tuple(value.shape)} but the net has {tuple(own[name].shape)}; "
                f"ImageNet weights need the ImageNet widths {IMAGENET_WIDTHS}"
            )
    trunk.load_state_dict(state, strict=True)
