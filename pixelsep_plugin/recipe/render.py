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

import functools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.audio.limiter import PeakLimiter
from pixelsep_plugin.effects import Chain, EffectWarning, StemContext, build_chain
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


class SampleQueue:
    """Samples of one stream waiting to be mixed, float32 (channels, n) pieces, taken out in any amounts."""

    def __init__(self, num_channels: int):
        self.pieces: list[np.ndarray] = []
        self.size = 0
        self.num_channels = num_channels

    def push(self, samples: np.ndarray) -> None:
        if samples.shape[-1]:
            self.pieces.append(samples)
            self.size += samples.shape[-1]

    def pop(self, n: int) -> np.ndarray:
        """The next ``n`` samples (zeros past what was pushed)."""
        out = np.zeros((self.num_channels, n), dtype=np.float32)
        filled = 0
        while filled < n and self.pieces:
            piece = self.pieces[0]
            take = min(n - filled, piece.shape[1])
            out[:, filled : filled + take] = piece[:, :take]
            filled += take
            if take == piece.shape[1]:
                self.pieces.pop(0)
            else:
                self.pieces[0] = piece[:, take:]
        self.size = max(0, self.size - n)
        return out


def chains_for(separation: Separation, recipe: Recipe, tail: str = "cut") -> dict[str, Chain]:
    """An effect :class:`~pixelsep_plugin.effects.Chain` for each source (and the residual) that has effects."""
    analysis = separation.analysis
    names = [s.name for s in recipe.sources]

    def stem_of(index: int | None):
        def blocks():
            for block in separation.iter_blocks(residual=index is None):
                yield block.residual if index is None else block.stems[index]

        return blocks

    chains = {}
    for index, (name, effects) in enumerate(
        [*((s.name, s.effects) for s in recipe.sources), ("residual", recipe.residual.effects)]
    ):
        if effects:
            context = StemContext(
                name, analysis.sample_rate, analysis.num_channels, separation.num_samples,
                stem_of(index if index < len(names) else None), base_folder=recipe.base_folder,
            )  # fmt: skip
            chains[name] = build_chain(effects, context, tail)
    return chains


class Remixer:
    """Mixes stem blocks into the remix with the recipe's gains, effect chains and (when asked) the limiter.

    remix = original + sum over sources of (g * processed - stem) + the same for the residual, where
    a source without effects is its own processed stem: with no effects and every gain at 0 dB that is
    the original, sample for sample. Chains may hand back fewer samples at first (latency) and more at
    the end (tails), so the remix comes out as the slowest stream allows: ``mix`` returns the samples
    ready, ``finish`` the rest. ``processed``: each chain's output from the last call (for its file)."""

    def __init__(
        self,
        recipe: Recipe,
        sample_rate: int,
        num_channels: int,
        limiter_ceiling: float | None = None,
        chains: dict[str, Chain] | None = None,
    ):
        self.gains, self.residual_gain = linear_gains(recipe)
        self.names = [s.name for s in recipe.sources]
        self.chains = dict(chains or {})
        self.limiter = PeakLimiter(sample_rate, num_channels, limiter_ceiling) if limiter_ceiling else None
        self.num_channels = num_channels
        self.base = SampleQueue(num_channels)  # the part of the remix known at once
        self.wet = {name: SampleQueue(num_channels) for name in self.chains}
        self.processed: dict[str, np.ndarray] = {}
        self.peak = 0.0  # the remix's peak before limiting
        self.clipped = 0  # samples above full scale in what was handed out (no limiter)

    def _gain(self, name: str) -> float:
        return self.residual_gain if name == "residual" else self.gains[self.names.index(name)]

    def _base(self, block: StemBlock) -> np.ndarray:
        remix = np.array(block.original, dtype=np.float32, copy=True)
        for name, gain, stem in zip(self.names, self.gains, block.stems, strict=True):
            if name in self.chains:
                remix -= stem
            elif gain != 1.0:
                remix += np.float32(gain - 1.0) * stem
        if "residual" in self.chains:
            remix -= block.residual
        elif self.residual_gain != 1.0:
            remix += np.float32(self.residual_gain - 1.0) * block.residual
        return remix

    def _ready(self, final: bool) -> np.ndarray:
        sizes = [self.base.size, *(fifo.size for fifo in self.wet.values())]
        n = max(sizes) if final else min(sizes)
        remix = self.base.pop(n)
        for name, fifo in self.wet.items():
            gain = self._gain(name)
            wet = fifo.pop(n)
            if gain != 0.0:
                remix += np.float32(gain) * wet
        if remix.size:
            self.peak = max(self.peak, float(np.abs(remix).max()))
        if self.limiter is not None:
            out = self.limiter.process(remix)
            return np.concatenate([out, self.limiter.finish()], axis=1) if final else out
        self.clipped += int(np.count_nonzero(np.abs(remix) > 1.0))
        return remix

    def mix(self, block: StemBlock) -> np.ndarray:
        """The remix samples ready after this block (float32 (channels, m))."""
        self.base.push(self._base(block))
        self.processed = {}
        for name, chain in self.chains.items():
            stem = block.residual if name == "residual" else block.stems[self.names.index(name)]
            out = chain.process(stem)
            self.processed[name] = out
            self.wet[name].push(out)
        return self._ready(final=False)

    def finish(self) -> np.ndarray:
        """The rest of the remix, to the end of the longest stream (a ringing tail included)."""
        self.processed = {}
        for name, chain in self.chains.items():
            out = chain.finish()
            self.processed[name] = out
            self.wet[name].push(out)
        return self._ready(final=True)


def iter_remix(
    separation: Separation,
    recipe: Recipe,
    limiter_ceiling: float | None = None,
    remixer: Remixer | None = None,
    tail: str = "cut",
) -> Iterator[np.ndarray]:
    """The remix as float32 (channels, n) blocks, from the clip's first audio sample to its last
    (and on through the effects' tails with ``tail="ring"``)."""
    analysis = separation.analysis
    remixer = remixer or Remixer(recipe, analysis.sample_rate, analysis.num_channels, limiter_ceiling,
                                 chains_for(separation, recipe, tail))  # fmt: skip
    for block in separation.iter_blocks(residual=True):
        out = remixer.mix(block)
        if out.shape[-1]:
            yield out
    rest = remixer.finish()
    if rest.size:
        yield rest


@dataclass
class RenderResult:
    """What a render wrote: stem files by source name, processed stems (sources with effects), the
    residual and the remix (None when not written),
    the remix's peak before limiting, the limiter's deepest gain reduction in dB, and warnings (one line each)."""

    stems: dict[str, Path] = field(default_factory=dict)
    processed: dict[str, Path] = field(default_factory=dict)  # name -> its stem through its effect chain
    residual: Path | None = None
    remix: Path | None = None
    remix_peak: float = 0.0
    reduction_db: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _write_mix(writers: dict, mixed: np.ndarray, processed: dict[str, np.ndarray], remix: bool, stems: bool) -> None:
    if remix:
        writers["remix"].write(mixed)
    if stems:
        for name, samples in processed.items():
            writers[f"{name}.fx"].write(samples)


def _collecting_effect_warnings(render_function: Callable[..., RenderResult]) -> Callable[..., RenderResult]:
    """Warnings that effects raise (:class:`~pixelsep_plugin.effects.EffectWarning`) go into the result's
    warnings, once each; other warnings pass on."""

    @functools.wraps(render_function)
    def collecting(*args, **kwargs) -> RenderResult:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EffectWarning)
            result = render_function(*args, **kwargs)
        for warning in caught:
            if issubclass(warning.category, EffectWarning):
                if str(warning.message) not in result.warnings:
                    result.warnings.append(str(warning.message))
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return result

    return collecting


def planned_outputs(
    recipe: Recipe, out_dir: Path, stems: bool = True, remix: bool = True, audio_format: str | None = None
) -> dict[str, Path]:
    """The files :func:`render` writes, by role: each source's name, "residual" (when the recipe's output
    asks for it), "<name>.fx" for each source (or the residual) with effects, and "remix"."""
    audio_format = audio_format or recipe.output.format
    if audio_format not in FORMAT_SUFFIXES:
        raise InputError(f"audio format must be one of {', '.join(FORMAT_SUFFIXES)}, not {audio_format!r}")
    suffix, prefix, out_dir = FORMAT_SUFFIXES[audio_format], recipe.prefix, Path(out_dir)
    paths: dict[str, Path] = {}
    if stems:
        paths.update({s.name: out_dir / f"{prefix}.{s.name}{suffix}" for s in recipe.sources})
        if recipe.output.residual:
            paths["residual"] = out_dir / f"{prefix}.residual{suffix}"
        with_effects = [s.name for s in recipe.sources if s.effects]
        with_effects += ["residual"] if recipe.residual.effects else []
        paths.update({f"{name}.fx": out_dir / f"{prefix}.{name}.fx{suffix}" for name in with_effects})
    if remix:
        paths["remix"] = out_dir / f"{prefix}.remix{suffix}"
    return paths


@_collecting_effect_warnings
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
    tail: str = "cut",
) -> RenderResult:
    """Write ``<prefix>.<source>.<ext>`` per source, ``<prefix>.residual.<ext>`` (when the recipe's
    output asks for it) and ``<prefix>.remix.<ext>`` into ``out_dir``, streaming, each file atomic.
    A source (or residual) with effects also gets ``<prefix>.<source>.fx.<ext>``, its processed stem;
    the stem itself stays as separated.

    ``audio_format`` and ``peaks`` default to the recipe's output settings; ``tail`` "cut" keeps every
    file as long as the clip's audio, "ring" lets effect tails ring on. ``progress("render",
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
    rate, layout, channels = analysis.sample_rate, analysis.channel_layout, analysis.num_channels
    out_dir = Path(out_dir)
    protect = (recipe.clip.path, *protect)
    paths = planned_outputs(recipe, out_dir, stems, remix, audio_format)
    chains = chains_for(separation, recipe, tail)
    ceiling = ceiling_for(audio_format) if limits(audio_format, peaks) else None
    remixer = Remixer(recipe, rate, channels, ceiling, chains)
    stem_peaks = dict.fromkeys(names + ["residual"], 0.0)
    total_seconds = separation.num_samples / rate
    out_dir.mkdir(parents=True, exist_ok=True)
    with media.audio_writers(paths, rate, layout, protect) as writers:
        for block in separation.iter_blocks(residual=True):
            n = block.stems.shape[-1]
            if stems:
                for i, name in enumerate(names):
                    writers[name].write(block.stems[i])
                    stem_peaks[name] = max(stem_peaks[name], float(np.abs(block.stems[i]).max(initial=0.0)))
                if "residual" in writers:
                    writers["residual"].write(block.residual)
                    stem_peaks["residual"] = max(stem_peaks["residual"], float(np.abs(block.residual).max(initial=0.0)))
            if remix or chains:
                _write_mix(writers, remixer.mix(block), remixer.processed, remix, stems)
            if progress is not None:
                progress("render", (block.sample_start + n) / rate, total_seconds)
        if remix or chains:
            _write_mix(writers, remixer.finish().reshape(channels, -1), remixer.processed, remix, stems)
    result = RenderResult(
        stems={name: paths[name] for name in names if name in paths},
        processed={name: paths[f"{name}.fx"] for name in chains if f"{name}.fx" in paths},
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
