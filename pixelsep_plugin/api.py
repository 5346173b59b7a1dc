"""The public inference API: a :class:`Separator` holds a loaded model and serves any number of clips.

    sep = Separator()                                   # the default model, best provider
    analysis = sep.analyze("concert.mp4")               # once per clip (cached on disk)
    result = sep.separate(analysis, [Source("violin", (Point(640, 360),))])
    result.write("stems/", clip_name="concert")        # one file per source + the residual

The functional shortcut :func:`separate` does all of it in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.modelstore import ModelPackage, load_package
from pixelsep_plugin.modelstore.registry import resolve_model
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
        cache_root: Path | None = None,
        use_cache: bool = True,
    ):
        self.package: ModelPackage = load_package(resolve_model(model))
        self.nets = OnnxNets(self.package, providers=providers, threads=threads)
        self.cache_root = cache_root
        self.use_cache = use_cache

    def analyze(
        self, clip: str | Path, progress: Progress | None = None, cancel: CancelCheck | None = None
    ) -> tuple[Analysis, bool]:
        """The clip's analysis and whether it came from the cache."""
        return analyze(Path(clip), self.package, self.nets, self.cache_root, progress, cancel, use_cache=self.use_cache)

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
) -> StemFiles:
    """Render a separation to ``out_dir/<prefix>.<source>.<format>`` (+ ``.residual``), streaming.

    Files are written to temporary names and renamed into place only when complete.
    ``progress("stems", done_seconds, total_seconds)`` is called after each block.
    """
    if audio_format not in AUDIO_FORMATS:
        raise InputError(f"audio format must be one of {', '.join(AUDIO_FORMATS)}, not {audio_format!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    analysis = separation.analysis
    names = [s.name for s in separation.sources] + (["residual"] if residual else [])
    paths = {name: out_dir / f"{prefix}.{name}.{audio_format}" for name in names}
    total_seconds = separation.num_samples / analysis.sample_rate
    writers: dict[str, media.AudioWriter] = {}
    try:
        for name, path in paths.items():
            writers[name] = media.AudioWriter(path, analysis.sample_rate, analysis.channel_layout, protect=protect)
        for block in separation.iter_blocks(residual=residual):
            for i, source in enumerate(separation.sources):
                writers[source.name].write(block.stems[i])
            if residual:
                writers["residual"].write(block.residual)
            if progress is not None:
                done = (block.sample_start + block.stems.shape[-1]) / analysis.sample_rate
                progress("stems", done, total_seconds)
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    stems = {s.name: paths[s.name] for s in separation.sources}
    return StemFiles(stems=stems, residual=paths.get("residual"))


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
