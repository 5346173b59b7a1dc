"""The audio net: a pix2pix-style U-Net over the log-frequency log-magnitude spectrogram."""

from __future__ import annotations

import torch
from torch import nn

from pixelsep_plugin.config import AudioNetConfig


class _Level(nn.Module):
    """One level: down-conv, the inner levels, up-conv, and (except outermost) the skip concat."""

    def __init__(self, outer: int, inner: int, sub: _Level | None, out_channels: int | None = None):
        super().__init__()
        self.outermost = out_channels is not None
        self.sub = sub
        down = [nn.Conv2d(outer, inner, 4, 2, 1, bias=False)]
        if not self.outermost:
            down.insert(0, nn.LeakyReLU(0.2, inplace=False))
            if sub is not None:
                down.append(nn.BatchNorm2d(inner))
        self.down = nn.Sequential(*down)
        up_in = inner if sub is None else inner * 2
        up_out = out_channels if self.outermost else outer
        up = [
            nn.ReLU(inplace=False),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(up_in, up_out, 3, 1, 1, bias=self.outermost),
        ]
        if not self.outermost:
            up.append(nn.BatchNorm2d(up_out))
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.sub is not None:
            y = self.sub(y)
        y = self.up(y)
        return y if self.outermost else torch.cat([x, y], dim=1)


class AudioUNet(nn.Module):
    """log_magnitude: (N, 1, F, T) -> components (N, K, F, T), no activation.

    F and T must be multiples of ``2 ** num_downs``.
    """

    def __init__(self, cfg: AudioNetConfig):
        super().__init__()
        self.multiple = cfg.time_multiple
        widths = [min(cfg.base_channels * 2**i, cfg.base_channels * 8) for i in range(cfg.num_downs)]
        level: _Level | None = None
        for i in range(cfg.num_downs - 1, 0, -1):
            level = _Level(widths[i - 1], widths[i], level)
        self.input_norm = nn.BatchNorm2d(1)
        self.net = _Level(1, widths[0], level, out_channels=cfg.num_components)

    def forward(self, log_magnitude: torch.Tensor) -> torch.Tensor:
        f, t = log_magnitude.shape[-2:]
        if not torch.jit.is_tracing() and (f % self.multiple or t % self.multiple):
            raise ValueError(f"the audio net needs F and T that are multiples of {self.multiple}; got {f}x{t}")
        return self.net(self.input_norm(log_magnitude))
