"""The public inference API: a :class:`Separator` holds a loaded model and serves any number of clips.

    sep = Separator()                                   # the default model, best provider
    analysis = sep.analyze("concert.mp4")               # once per clip (cached on disk)
    result = sep.separate(analysis, [Source("violin", (Point(640, 360),))])
    result.write("stems/", clip_name="concert")        # one file per source + the residual

The functional shortcut :func:`separate` does all of it in one call. An edit is a recipe
(:mod:`pixelsep_plugin.recipe`); :func:`render_recipe`, :func:`write_remix_video` and
:func:`write_multitrack_video` make its deliveries, the same calls for every host.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.modelstore import ModelPackage, load_package
from pixelsep_plugin.modelstore.registry import resolve_model
from pixelsep_plugin.recipe import Recipe, engine_sources
from pixelsep_plugin.recipe.render import Progress as RenderProgress
from pixelsep_plugin.recipe.render import Remixer, RenderResult, ceiling_for, chains_for, iter_remix, limits, render
from pixelsep_plugin.runtime.analysis import Analysis, CancelCheck, Progress, analyze
from pixelsep_plugin.runtime.heatmap import energy_map
from pixelsep_plugin.runtime.query import Source
from pixelsep_plugin.runtime.separate import Separation
from pixelsep_plugin.runtime.sessions import OnnxNets

AUDIO_FORMATS = ("wav", "flac")


@dataclass(frozen=True)
class StemFiles:
    stems: dict[str, Path]
    residual: Path | None


class Separator:
    """A model package with its ONNX Runtime sessions; reuse it across clips."""

    def __init__(
        self,
        model: str | Path | None = None,
        providers: list[str] | None = None,
        threads: int | None = None,
        cache_root: Path | str | None = None,
        use_cache: bool = True,
    ):
        self.package: ModelPackage = load_package(resolve_model(model))
        self.nets = OnnxNets(self.package, providers=providers, threads=threads)
        self.cache_root = Path(cache_root) if cache_root is not None else None
        self.use_cache = use_cache

    def analyze(
        self, clip: str | Path, progress: Progress | None = None, cancel: CancelCheck | None = None
    ) -> tuple[Analysis, bool]:
        """The clip's analysis and whether it came from the cache."""
        return analyze(Path(clip), self.package, self.nets, self.cache_root, progress, cancel, use_cache=self.use_cache)

    def clip_sha256(self, clip: str | Path) -> str:
        """The clip's sha256, without reading the whole file again when the cache knows this exact file."""
        from pixelsep_plugin.runtime.analysis import clip_identity, default_cache_root

        root = self.cache_root or default_cache_root()
        return clip_identity(Path(clip), self.package, root, self.use_cache)[0]

    def separate(self, analysis: Analysis, sources: Sequence[Source], high_band: str = "extend") -> Separation:
        return Separation(analysis, self.package, sources, high_band=high_band)

    def energy_map(self, analysis: Analysis, time_seconds: float) -> np.ndarray:
        return energy_map(analysis, self.package, time_seconds)


def write_stems(
    separation: Separation,
    out_dir: Path,
    prefix: str,
    audio_format: str = "wav",
    residual: bool = True,
    protect: Sequence[Path] = (),
    progress: Progress | None = None,
    span_seconds: tuple[float, float] | None = None,
) -> StemFiles:
    """Render a separation to ``out_dir/<prefix>.<source>.<format>`` (+ ``.residual``), streaming.

    Files are written to temporary names and renamed into place only when complete.
    ``progress("stems", done_seconds, total_seconds)`` is called after each block.
    ``span_seconds=(start, end)``: the files hold only that span of the clip (clipped to its length),
    equal to the same samples of a whole render.
    """
    if audio_format not in AUDIO_FORMATS:
        raise InputError(f"audio format must be one of {', '.join(AUDIO_FORMATS)}, not {audio_format!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    analysis = separation.analysis
    names = [s.name for s in separation.sources] + (["residual"] if residual else [])
    paths = {name: out_dir / f"{prefix}.{name}.{audio_format}" for name in names}
    sample_start, sample_stop = 0, separation.num_samples
    if span_seconds is not None:
        sample_start, sample_stop = separation.span_samples(*span_seconds)
    total_seconds = (sample_stop - sample_start) / analysis.sample_rate
    with media.audio_writers(paths, analysis.sample_rate, analysis.channel_layout, protect) as writers:
        blocks = separation.iter_blocks(residual=residual, sample_start=sample_start, sample_stop=sample_stop)
        for block in blocks:
            for i, source in enumerate(separation.sources):
                writers[source.name].write(block.stems[i])
            if residual:
                writers["residual"].write(block.residual)
            if progress is not None:
                done = (block.sample_start - sample_start + block.stems.shape[-1]) / analysis.sample_rate
                progress("stems", done, total_seconds)
    stems = {s.name: paths[s.name] for s in separation.sources}
    return StemFiles(stems=stems, residual=paths.get("residual"))


def separation_for(separator: Separator, analysis: Analysis, recipe: Recipe) -> Separation:
    """The recipe's sources separated on the clip's analysis (with the recipe's high-band choice)."""
    return separator.separate(analysis, engine_sources(recipe), high_band=recipe.output.high_band)


def render_recipe(
    separator: Separator,
    analysis: Analysis,
    recipe: Recipe,
    out_dir: Path,
    stems: bool = True,
    remix: bool = True,
    audio_format: str | None = None,
    peaks: str | None = None,
    progress: RenderProgress | None = None,
    tail: str | None = None,
) -> RenderResult:
    """Write the recipe's stems, residual and remix into ``out_dir`` (see :func:`pixelsep_plugin.recipe.render.render`);
    ``tail`` defaults to the recipe's output setting."""
    return render(
        separation_for(separator, analysis, recipe), recipe, Path(out_dir), stems=stems, remix=remix,
        audio_format=audio_format, peaks=peaks, progress=progress, tail=tail or recipe.output.tail,
    )  # fmt: skip


def _video_ceiling(peaks: str | None, recipe: Recipe) -> float | None:
    """Video deliveries carry lossy or integer sound: the remix is limited unless peaks is "warn"."""
    return ceiling_for("aac") if limits("aac", peaks or recipe.output.peaks) else None


def write_remix_video(
    separator: Separator,
    analysis: Analysis,
    recipe: Recipe,
    out_path: Path,
    peaks: str | None = None,
    progress: RenderProgress | None = None,
) -> Path:
    """A copy of the recipe's clip with the remix as its sound; the picture and other streams are copied."""
    separation = separation_for(separator, analysis, recipe)
    blocks = iter_remix(separation, recipe, limiter_ceiling=_video_ceiling(peaks, recipe), tail=recipe.output.tail)
    return media.mux_new_audio(
        recipe.clip.path, _with_progress(blocks, analysis.sample_rate, separation.num_samples, progress),
        analysis.sample_rate, analysis.channel_layout, Path(out_path), protect=(recipe.clip.path,),
    )  # fmt: skip


REMIX_AUDIO_SUFFIXES = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".opus": "opus", ".m4a": "aac"}
REMIX_VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


def render_remix_file(
    separator: Separator,
    analysis: Analysis,
    recipe: Recipe,
    out_path: Path,
    peaks: str | None = None,
    progress: RenderProgress | None = None,
) -> tuple[Path, list[str]]:
    """The remix alone into ``out_path``: an audio file (.wav, .flac, .mp3, .opus, .m4a) or, for a video
    suffix, a copy of the clip with the remix as its sound. Returns (path, warnings)."""
    import os
    import tempfile

    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix in REMIX_VIDEO_SUFFIXES:
        return write_remix_video(separator, analysis, recipe, out_path, peaks=peaks, progress=progress), []
    if suffix not in REMIX_AUDIO_SUFFIXES:
        known = ", ".join([*REMIX_AUDIO_SUFFIXES, *REMIX_VIDEO_SUFFIXES])
        raise InputError(f"a remix is written to {known}, not {out_path.name}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".pixelsep-") as folder:
        result = render_recipe(separator, analysis, recipe, Path(folder), stems=False, remix=True,
                               audio_format=REMIX_AUDIO_SUFFIXES[suffix], peaks=peaks, progress=progress)  # fmt: skip
        media.encode.check_not_protected(out_path, (recipe.clip.path,))
        os.replace(result.remix, out_path)
    return out_path, result.warnings


class _FanOut:
    """One pass of a separation feeding several block streams (the remix, each stem, the residual).

    Each stream pulls blocks from its own queue; an empty queue advances the shared render by one
    block. Consumers that read in step (as a muxer interleaving by time does) keep memory bounded."""

    def __init__(self, separation: Separation, remixer: Remixer, streams: list[str]):
        self.separation, self.remixer = separation, remixer
        self.queues: dict[str, deque[np.ndarray]] = {name: deque() for name in streams}
        self.blocks = separation.iter_blocks(residual=True)
        self.done = False
        self.names = [s.name for s in separation.sources]

    def _advance(self) -> None:
        block = next(self.blocks, None)
        if block is None:
            self.done = True
            if "remix" in self.queues:
                rest = self.remixer.finish()
                if rest.size:
                    self.queues["remix"].append(rest)
            return
        if "remix" in self.queues:
            out = self.remixer.mix(block)
            if out.shape[-1]:
                self.queues["remix"].append(out)
        for i, name in enumerate(self.names):
            if name in self.queues:
                self.queues[name].append(block.stems[i])
        if "residual" in self.queues:
            self.queues["residual"].append(block.residual)

    def stream(self, name: str) -> Iterator[np.ndarray]:
        queue = self.queues[name]
        while True:
            while not queue and not self.done:
                self._advance()
            if not queue:
                return
            yield queue.popleft()


def _with_progress(blocks, sample_rate: int, num_samples: int, progress: RenderProgress | None):
    done = 0
    for block in blocks:
        done += block.shape[-1]
        if progress is not None:
            progress("render", done / sample_rate, num_samples / sample_rate)
        yield block


def write_multitrack_video(
    separator: Separator,
    analysis: Analysis,
    recipe: Recipe,
    out_path: Path,
    peaks: str | None = None,
    progress: RenderProgress | None = None,
) -> Path:
    """An .mkv/.mov for editors: the picture and the original sound copied, then the remix, one titled
    track per source and the residual, all starting where the original sound starts."""
    separation = separation_for(separator, analysis, recipe)
    ceiling = _video_ceiling(peaks, recipe)
    chains = chains_for(separation, recipe, recipe.output.tail)
    remixer = Remixer(recipe, analysis.sample_rate, analysis.num_channels, ceiling, chains)
    names = ["remix", *[s.name for s in recipe.sources], "residual"]
    fan = _FanOut(separation, remixer, names)
    rate, layout = analysis.sample_rate, analysis.channel_layout
    tracks = [
        (
            name,
            _with_progress(fan.stream(name), rate, separation.num_samples, progress if name == "remix" else None),
            rate,
            layout,
        )
        for name in names
    ]
    return media.write_multitrack(recipe.clip.path, tracks, Path(out_path), protect=(recipe.clip.path,))


def separate(
    clip: str | Path,
    sources: Sequence[Source],
    model: str | Path | None = None,
    high_band: str = "extend",
) -> tuple[np.ndarray, np.ndarray, int]:
    """One call: stems float32 (sources, channels, samples), residual (channels, samples), sample rate."""
    separator = Separator(model)
    analysis, _ = separator.analyze(clip)
    stems, residual = separator.separate(analysis, sources, high_band=high_band).render()
    return stems, residual, analysis.sample_rate
