"""Rendering a recipe: its stems, the residual and the remix, streamed block by block.

The remix is ``original + sum_i (g_i - 1) * stem_i + (g_r - 1) * residual`` with the linear gains of
:func:`~pixelsep_plugin.recipe.edit.linear_gains`. Since stems + residual equal the original, that
is ``sum_i g_i * stem_i + g_r * residual``; written this way, a recipe whose gains are all 0 dB
renders the clip's own decoded samples, bit for bit in float WAV.

Peaks above full scale are never clipped silently. ``peaks`` (the recipe's output setting):
``"auto"`` limits the remix in every format that would clip it (all but float WAV, which keeps
them) and says so; ``"limit"`` always limits (ceiling -0.1 dBFS for FLAC and WAV, -1 dBFS for the
lossy formats, whose decoders overshoot); ``"warn"`` never limits and warns with the peak and,
where the format clips, the number of clipped samples. Stems are never limited (they are material
for further work); a stem that a format clips is warned about the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.audio.limiter import PeakLimiter
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe.document import Recipe
from pixelsep_plugin.recipe.edit import linear_gains
from pixelsep_plugin.runtime.separate import Separation, StemBlock

FORMAT_SUFFIXES = {"wav": ".wav", "flac": ".flac", "mp3": ".mp3", "opus": ".opus", "aac": ".m4a"}
CLIPPING_FORMATS = ("flac", "mp3", "opus", "aac")  # float WAV keeps samples above 1.0
LOSSY_FORMATS = ("mp3", "opus", "aac")
Progress = Callable[[str, float, float], None]


def ceiling_for(audio_format: str) -> float:
    """The limiter's ceiling (linear) for a format: -1 dBFS for lossy ones, -0.1 dBFS otherwise."""
    return 10 ** ((-1.0 if audio_format in LOSSY_FORMATS else -0.1) / 20)


def limits(audio_format: str, peaks: str) -> bool:
    """Whether the remix goes through the limiter for this format and peak mode."""
    if peaks not in ("auto", "limit", "warn"):
        raise InputError(f"peaks must be auto, limit or warn, not {peaks!r}")
    return peaks == "limit" or (peaks == "auto" and audio_format in CLIPPING_FORMATS)


def dbfs(value: float) -> str:
    return f"{20 * np.log10(max(value, 1e-12)):+.1f} dBFS"


class Remixer:
    """Mixes stem blocks into the remix with the recipe's gains (and the limiter, when asked).

    ``mix`` returns the remix samples ready so far (the limiter holds back its look-ahead); ``finish``
    returns the rest, so the samples out add up to the samples in."""

    def __init__(self, recipe: Recipe, sample_rate: int, num_channels: int, limiter_ceiling: float | None = None):
        chained = [s.name for s in recipe.sources if s.effects] + (["residual"] if recipe.residual.effects else [])
        if chained:
            raise InputError(
                f"{chained[0]} has an effect chain, which this version of pixelsep cannot apply: "
                "empty its 'effects' to render"
            )
        self.gains, self.residual_gain = linear_gains(recipe)
        self.limiter = PeakLimiter(sample_rate, num_channels, limiter_ceiling) if limiter_ceiling else None
        self.peak = 0.0  # the remix's peak before limiting
        self.clipped = 0  # samples above full scale in what was handed out (no limiter)

    def _mix(self, original: np.ndarray, block: StemBlock) -> np.ndarray:
        remix = np.array(original, dtype=np.float32, copy=True)
        for gain, stem in zip(self.gains, block.stems, strict=True):
            if gain != 1.0:
                remix += np.float32(gain - 1.0) * stem
        if self.residual_gain != 1.0:
            remix += np.float32(self.residual_gain - 1.0) * block.residual
        return remix

    def mix(self, original: np.ndarray, block: StemBlock) -> np.ndarray:
        remix = self._mix(original, block)
        if remix.size:
            self.peak = max(self.peak, float(np.abs(remix).max()))
        if self.limiter is not None:
            return self.limiter.process(remix)
        self.clipped += int(np.count_nonzero(np.abs(remix) > 1.0))
        return remix

    def finish(self) -> np.ndarray:
        if self.limiter is not None:
            return self.limiter.finish()
        return np.zeros((0, 0), dtype=np.float32)


def iter_remix(
    separation: Separation, recipe: Recipe, limiter_ceiling: float | None = None, remixer: Remixer | None = None
) -> Iterator[np.ndarray]:
    """The remix as float32 (channels, n) blocks, from the clip's first audio sample to its last."""
    analysis = separation.analysis
    remixer = remixer or Remixer(recipe, analysis.sample_rate, analysis.audio.shape[0], limiter_ceiling)
    for block in separation.iter_blocks(residual=True):
        n = block.stems.shape[-1]
        out = remixer.mix(analysis.audio[:, block.sample_start : block.sample_start + n], block)
        if out.shape[-1]:
            yield out
    rest = remixer.finish()
    if rest.size:
        yield rest


@dataclass
class RenderResult:
    """What a render wrote: stem files by source name, the residual and the remix (None when not written),
    the remix's peak before limiting, the limiter's deepest gain reduction in dB, and warnings (one line each)."""

    stems: dict[str, Path] = field(default_factory=dict)
    residual: Path | None = None
    remix: Path | None = None
    remix_peak: float = 0.0
    reduction_db: float = 0.0
    warnings: list[str] = field(default_factory=list)


def render(
    separation: Separation,
    recipe: Recipe,
    out_dir: Path,
    stems: bool = True,
    remix: bool = True,
    audio_format: str | None = None,
    peaks: str | None = None,
    protect: tuple[Path, ...] = (),
    progress: Progress | None = None,
) -> RenderResult:
    """Write ``<prefix>.<source>.<ext>`` per source, ``<prefix>.residual.<ext>`` (when the recipe's
    output asks for it) and ``<prefix>.remix.<ext>`` into ``out_dir``, streaming, each file atomic.

    ``audio_format`` and ``peaks`` default to the recipe's output settings. ``progress("render",
    done_seconds, total_seconds)`` after each block."""
    audio_format = audio_format or recipe.output.format
    if audio_format not in FORMAT_SUFFIXES:
        raise InputError(f"audio format must be one of {', '.join(FORMAT_SUFFIXES)}, not {audio_format!r}")
    peaks = peaks or recipe.output.peaks
    names = [s.name for s in separation.sources]
    if names != [s.name for s in recipe.sources]:
        raise InputError("the separation's sources are not the recipe's: separate the recipe's sources")
    if not (stems or remix):
        raise InputError("nothing to render: ask for the stems, the remix or both")
    analysis = separation.analysis
    rate, layout, channels = analysis.sample_rate, analysis.channel_layout, analysis.audio.shape[0]
    suffix = FORMAT_SUFFIXES[audio_format]
    prefix = recipe.prefix
    out_dir = Path(out_dir)
    protect = (recipe.clip.path, *protect)
    paths: dict[str, Path] = {}
    if stems:
        paths.update({name: out_dir / f"{prefix}.{name}{suffix}" for name in names})
        if recipe.output.residual:
            paths["residual"] = out_dir / f"{prefix}.residual{suffix}"
    if remix:
        paths["remix"] = out_dir / f"{prefix}.remix{suffix}"
    remixer = Remixer(recipe, rate, channels, ceiling_for(audio_format) if limits(audio_format, peaks) else None)
    stem_peaks = dict.fromkeys(names + ["residual"], 0.0)
    total_seconds = separation.num_samples / rate
    writers: dict[str, media.AudioWriter] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, path in paths.items():
            writers[name] = media.AudioWriter(path, rate, layout, protect=protect)
        for block in separation.iter_blocks(residual=True):
            n = block.stems.shape[-1]
            if stems:
                for i, name in enumerate(names):
                    writers[name].write(block.stems[i])
                    stem_peaks[name] = max(stem_peaks[name], float(np.abs(block.stems[i]).max(initial=0.0)))
                if "residual" in writers:
                    writers["residual"].write(block.residual)
                    stem_peaks["residual"] = max(stem_peaks["residual"], float(np.abs(block.residual).max(initial=0.0)))
            if remix:
                writers["remix"].write(
                    remixer.mix(analysis.audio[:, block.sample_start : block.sample_start + n], block)
                )
            if progress is not None:
                progress("render", (block.sample_start + n) / rate, total_seconds)
        if remix:
            writers["remix"].write(remixer.finish().reshape(channels, -1))
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    result = RenderResult(
        stems={name: paths[name] for name in names if name in paths},
        residual=paths.get("residual"),
        remix=paths.get("remix"),
        remix_peak=remixer.peak,
    )
    if remix and remixer.limiter is not None:
        result.reduction_db = remixer.limiter.gain_reduction_db()
        if result.reduction_db > 0:
            result.warnings.append(
                f"the remix peaked at {dbfs(remixer.peak)}: limited to {dbfs(remixer.limiter.ceiling)} "
                f"(at most {result.reduction_db:.1f} dB of gain reduction)"
            )
    elif remix and remixer.peak > 1.0:
        if audio_format in CLIPPING_FORMATS:
            result.warnings.append(
                f"the remix peaks at {dbfs(remixer.peak)}: {remixer.clipped} samples are clipped in {audio_format}; "
                "lower the gains or render with --peaks limit"
            )
        else:
            result.warnings.append(
                f"the remix peaks at {dbfs(remixer.peak)}: float WAV keeps it, but players will clip it; "
                "lower the gains or render with --peaks limit"
            )
    if stems and audio_format in CLIPPING_FORMATS:
        for name, peak in stem_peaks.items():
            if peak > 1.0 and name in paths:
                result.warnings.append(
                    f"stem {name} peaks at {dbfs(peak)}: clipped in {audio_format}; use wav to keep it"
                )
    return result
