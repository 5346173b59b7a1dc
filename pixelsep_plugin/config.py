"""Configuration: frozen dataclasses passed to constructors, never a global.

Every model package stores its :class:`ModelConfig` as JSON (``to_dict``) and is rebuilt from it
(``model_config_from_dict``). The named configurations live in :data:`MODEL_CONFIGS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AudioFrontEndConfig:
    """The analysis front end: mono audio at ``sample_rate`` -> log-frequency magnitude spectrogram.

    With the defaults a column is 256 / 11025 s = 23.2 ms and the linear spectrum has
    ``n_fft // 2 + 1 = 512`` bins up to 5512.5 Hz, warped onto ``log_freq_bins = 256`` bins.
    """

    sample_rate: int = 11025
    n_fft: int = 1022
    hop_length: int = 256
    log_freq_bins: int = 256
    # Shape of the log warp: bin j of the warped spectrum reads linear frequency
    # (warp_base ** (j / (log_freq_bins - 1)) - 1) / (warp_base - 1) * nyquist.
    warp_base: float = 21.5

    @property
    def linear_freq_bins(self) -> int:
        return self.n_fft // 2 + 1


@dataclass(frozen=True)
class VideoNetConfig:
    """ResNet-18 style video net giving ``num_components`` sigmoid features per pixel.

    ``widths`` are the channels of the stem and the four stages (the ImageNet ResNet-18 has
    (64, 64, 128, 256, 512)). Stage 4 is dilated instead of strided, so the output stride is 16.
    """

    widths: tuple[int, int, int, int, int] = (64, 64, 128, 256, 512)
    num_components: int = 32
    frame_size: int = 224  # training crop side; inference keeps the aspect with this short side
    frames_per_window: int = 3  # frames max-pooled over time in training
    # a click reads the feature cells within this many cells of the clicked one (the runtime's
    # point reach); a model trained as it is clicked stores the reach it was trained with
    click_reach_cells: int = 2


@dataclass(frozen=True)
class AudioNetConfig:
    """pix2pix-style U-Net over the log-frequency magnitude spectrogram (1 channel in)."""

    num_downs: int = 7
    base_channels: int = 64
    num_components: int = 32

    @property
    def time_multiple(self) -> int:
        """Valid lengths of the time (and frequency) axis are multiples of this."""
        return 2**self.num_downs


@dataclass(frozen=True)
class ChunkConfig:
    """How a clip is cut into overlapping analysis windows (in STFT columns)."""

    window_columns: int = 256  # 256 columns * 256 hop / 11025 Hz = 5.94 s
    overlap_columns: int = 64
    frames_per_second: float = 1.0  # video frames sampled for the video net

    @property
    def hop_columns(self) -> int:
        return self.window_columns - self.overlap_columns


@dataclass(frozen=True)
class ModelConfig:
    name: str
    num_components: int
    audio: AudioFrontEndConfig = field(default_factory=AudioFrontEndConfig)
    video_net: VideoNetConfig = field(default_factory=VideoNetConfig)
    audio_net: AudioNetConfig = field(default_factory=AudioNetConfig)
    chunks: ChunkConfig = field(default_factory=ChunkConfig)

    def __post_init__(self) -> None:
        if self.video_net.num_components != self.num_components:
            raise ValueError("video_net.num_components must equal num_components")
        if self.audio_net.num_components != self.num_components:
            raise ValueError("audio_net.num_components must equal num_components")
        if self.chunks.window_columns % self.audio_net.time_multiple:
            raise ValueError(
                f"chunks.window_columns={self.chunks.window_columns} must be a multiple of "
                f"2**audio_net.num_downs={self.audio_net.time_multiple}"
            )
        if self.audio.log_freq_bins % self.audio_net.time_multiple:
            raise ValueError("audio.log_freq_bins must be a multiple of 2**audio_net.num_downs")
        if not 0 <= self.chunks.overlap_columns < self.chunks.window_columns:
            raise ValueError("chunks.overlap_columns must be in [0, window_columns)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _paper() -> ModelConfig:
    k = 32
    return ModelConfig(
        name="paper",
        num_components=k,
        video_net=VideoNetConfig(widths=(64, 64, 128, 256, 512), num_components=k),
        audio_net=AudioNetConfig(num_downs=7, base_channels=64, num_components=k),
    )


def _small() -> ModelConfig:
    k = 16
    return ModelConfig(
        name="small",
        num_components=k,
        video_net=VideoNetConfig(widths=(16, 16, 32, 64, 128), num_components=k, frame_size=160),
        audio_net=AudioNetConfig(num_downs=6, base_channels=16, num_components=k),
    )


def _tiny() -> ModelConfig:
    """The smallest nets on the same front end and windows: a package of a few hundred KB that
    exercises every step of inference (the tests' torch-free model)."""
    k = 4
    return ModelConfig(
        name="tiny",
        num_components=k,
        video_net=VideoNetConfig(widths=(4, 4, 8, 8, 16), num_components=k, frame_size=160),
        audio_net=AudioNetConfig(num_downs=6, base_channels=4, num_components=k),
    )


MODEL_CONFIGS = {"paper": _paper, "small": _small, "tiny": _tiny}


def get_model_config(name: str) -> ModelConfig:
    try:
        return MODEL_CONFIGS[name]()
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; choose one of {sorted(MODEL_CONFIGS)}") from None


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a :class:`ModelConfig` from ``to_dict()`` output (lists become tuples)."""
    return ModelConfig(
        name=data["name"],
        num_components=int(data["num_components"]),
        audio=AudioFrontEndConfig(**data["audio"]),
        video_net=VideoNetConfig(**{**data["video_net"], "widths": tuple(data["video_net"]["widths"])}),
        audio_net=AudioNetConfig(**data["audio_net"]),
        chunks=ChunkConfig(**data["chunks"]),
    )
