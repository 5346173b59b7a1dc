"""From queries to stems: the cheap, per-click half of PixelPlayer.

For each source and analysis window ``w`` the mask is ``sigmoid(sum_k alpha_k q_k S_w[k] + beta)``
(``q``: the source's K-vector for that window, see :mod:`.query`; ``S_w``: the cached audio
components). Window masks are blended across overlaps (:mod:`.chunking`). The masks of all chosen
sources are then made mixture-consistent: where they add up to more than 1 they are divided by
their sum, so that the residual mask ``1 - sum`` is never negative.

The masks live on the analysis grid (256 log-frequency bins up to 5512.5 Hz, 23.2 ms columns). They
are carried onto an STFT of the clip's own audio (its own sample rate, window about 93 ms, see
:func:`pixelsep_plugin.audio.stft.source_stft_size`) by linear interpolation in time and in
frequency; interpolation with non-negative weights keeps the sum of masks at most 1. Above the
analysis band (5512.5 Hz) the nets see nothing, so ``high_band`` decides:

- ``"extend"`` (default): each source keeps, at every moment, its mean mask over the top octave it
  can see (2756-5512 Hz) — harmonics and noise above 5.5 kHz mostly belong to the instrument whose
  upper partials are below it;
- ``"residual"``: everything above 5.5 kHz goes to the residual.

Each channel is multiplied by the same mask, so stems keep the clip's channel layout, and the inverse
STFT is exact and linear, so the residual (mask ``1 - sum``) is the clip's audio minus the stems:
stems + residual equal the clip's audio to float precision. Work is done in blocks of
STFT frames, so memory does not depend on the clip's length.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pixelsep_plugin.audio.stft import Stft, source_stft_size
from pixelsep_plugin.audio.warp import Interp, log_bins_for_frequencies
from pixelsep_plugin.config import AudioFrontEndConfig
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.modelstore import ModelPackage
from pixelsep_plugin.runtime.analysis import Analysis
from pixelsep_plugin.runtime.chunking import blend
from pixelsep_plugin.runtime.query import Source, check_part, track_part, window_vectors

HIGH_BAND_MODES = ("extend", "residual")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


@dataclass
class StemBlock:
    """Stems and residual for samples ``[sample_start, sample_start + n)``.

    stems: float32 (sources, channels, n); residual: float32 (channels, n) or None; original: the
    clip's own audio for those samples, float32 (channels, n) (what the stems and residual add up to).
    """

    sample_start: int
    stems: np.ndarray
    residual: np.ndarray | None
    original: np.ndarray


class Separation:
    """The sources chosen on one analysed clip, ready to render.

    Construction validates the queries against the clip (frame size, duration) and tracks them
    through the sampled frames; rendering then reads the analysis and the clip's audio block by block.
    """

    def __init__(
        self,
        analysis: Analysis,
        package: ModelPackage,
        sources: Sequence[Source],
        high_band: str = "extend",
        search_radius_cells: int = 1,
        point_reach_cells: int | None = None,
        stft_frames_per_window: int = 4,
    ):
        if not sources:
            raise InputError("no source given: click at least one performer (--at X,Y or --box X0,Y0,X1,Y1)")
        if high_band not in HIGH_BAND_MODES:
            raise InputError(f"high_band must be one of {', '.join(HIGH_BAND_MODES)}, not {high_band!r}")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise InputError(f"source names must differ; got {', '.join(names)}")
        for source in sources:
            for part in source.parts:
                check_part(part, analysis.width, analysis.height, analysis.duration_seconds)
        if analysis.meta["model"]["checksum"] != package.checksum:
            raise InputError("this analysis was made with another model: analyse the clip again with this one")
        if point_reach_cells is None:  # as the model was trained to be clicked
            point_reach_cells = package.config.video_net.click_reach_cells
        self.analysis = analysis
        self.sources = list(sources)
        self.high_band = high_band
        self.front: AudioFrontEndConfig = package.config.audio
        self.alpha = package.alpha.astype(np.float32)
        self.beta = float(package.beta)
        plan = analysis.plan
        if not np.array_equal(plan.starts, np.asarray(analysis.arrays["window_starts"])):
            raise InputError("the analysis windows do not match their plan: analyse the clip again")
        # (sources, parts, windows, K): each part's per-window K-vector, alpha folded in
        self.part_vectors = [
            np.stack(
                [
                    window_vectors(
                        track_part(
                            part,
                            analysis.features,
                            analysis.frame_times,
                            analysis.width,
                            analysis.height,
                            search_radius_cells,
                            point_reach_cells,
                        ),
                        analysis.frame_times,
                        plan.starts,
                        plan.window,
                        analysis.column_seconds,
                    )
                    * self.alpha
                    for part in source.parts
                ]
            )
            for source in self.sources
        ]
        analysis.release_pages()  # tracking read every frame's features; rendering will not need them
        self._window_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.sample_rate = analysis.sample_rate
        self.stft = Stft(*source_stft_size(self.sample_rate, stft_frames_per_window))
        freqs = np.arange(self.stft.freq_bins) * self.sample_rate / self.stft.n_fft
        nyquist = self.front.sample_rate / 2
        self._num_low = int(np.searchsorted(freqs, nyquist, side="right"))
        self._freq_map: Interp = log_bins_for_frequencies(freqs[: self._num_low], self.front)
        top_octave = log_bins_for_frequencies(np.array([nyquist / 2]), self.front)
        self._top_octave_from = int(top_octave.lower[0])

    @property
    def num_samples(self) -> int:
        return int(self.analysis.meta["media"]["num_samples"])

    def window_masks(self, index: int) -> np.ndarray:
        """Masks of every source in window ``index``: float32 (sources, F, T), before consistency."""
        if index in self._window_cache:
            self._window_cache.move_to_end(index)
            return self._window_cache[index]
        comps = self.analysis.read_components(index).astype(np.float32)  # (K, F, T)
        k, f, t = comps.shape
        flat = comps.reshape(k, f * t)
        masks = np.empty((len(self.sources), f * t), dtype=np.float32)
        for s, vectors in enumerate(self.part_vectors):
            logits = vectors[:, index, :] @ flat + self.beta  # (parts, F*T)
            masks[s] = _sigmoid(logits.max(axis=0))  # sigmoid is monotonic: max of masks
        masks = masks.reshape(len(self.sources), f, t)
        self._window_cache[index] = masks
        if len(self._window_cache) > 4:
            self._window_cache.popitem(last=False)
        return masks

    def analysis_masks(self, column_start: int, column_stop: int) -> np.ndarray:
        """Consistent masks on the analysis grid: float32 (sources, F, columns); sum over sources <= 1."""
        masks = blend(self.analysis.plan, self.window_masks, column_start, column_stop)
        total = masks.sum(axis=0, keepdims=True)
        return masks / np.maximum(total, 1.0)

    def source_masks(self, frame_start: int, frame_stop: int) -> np.ndarray:
        """Masks on the clip's own STFT for frames ``[frame_start, frame_stop)``: (sources, bins, frames)."""
        hop_seconds = self.stft.hop_length / self.sample_rate
        positions = np.arange(frame_start, frame_stop) * hop_seconds / self.analysis.column_seconds
        last = self.analysis.num_columns - 1
        c0 = max(0, min(int(np.floor(positions[0])), last - 1))
        c1 = min(last + 1, max(int(np.ceil(positions[-1])) + 1, c0 + 2))
        grid = self.analysis_masks(c0, c1)
        time_map = Interp.at_positions(positions - c0, c1 - c0)
        low = time_map(self._freq_map(grid, axis=1), axis=2)
        out = np.zeros((grid.shape[0], self.stft.freq_bins, positions.size), dtype=np.float32)
        out[:, : self._num_low] = low
        if self.high_band == "extend":
            top = grid[:, self._top_octave_from :].mean(axis=1)  # (sources, columns)
            out[:, self._num_low :] = time_map(top, axis=1)[:, None, :]
        return out

    def _render_block(self, a: int, b: int, j0: int, j1: int, masks: np.ndarray, residual: bool) -> StemBlock:
        """STFT of the samples around ``[a, b)``, masked per source, and back (runs in a worker thread)."""
        length = self.num_samples
        first, stop = self.stft.frame_span(j0, j1)
        offset = max(0, first)
        segment = self.analysis.read_audio(offset, min(length, stop))  # the frames cover [a, b)
        spec = self.stft.frames(segment, j0, j1, offset=offset, length=length)
        stems = np.stack([self.stft.overlap_add(spec * m, j0, a, b, length) for m in masks])
        original = segment[:, a - offset : b - offset]
        rest = None
        if residual:  # the inverse is linear and exact: the residual mask 1 - sum(masks) gives audio - sum(stems)
            rest = original - stems.sum(axis=0)
        return StemBlock(a, stems, rest, original)

    def iter_blocks(
        self,
        block_frames: int = 256,
        residual: bool = True,
        threads: int | None = None,
        sample_start: int = 0,
        sample_stop: int | None = None,
    ) -> Iterator[StemBlock]:
        """Render stems (and the residual) block by block, in order, covering every sample once.

        Only samples ``[sample_start, sample_stop)`` are rendered (default: the whole clip); the
        blocks equal the same samples of a whole render. Masks are made here while ``threads``
        workers (default: all cores) run the FFTs of earlier blocks; at most ``threads + 1`` blocks
        are in flight, so memory stays bounded.
        """
        length = self.num_samples
        stop = length if sample_stop is None else sample_stop
        if not 0 <= sample_start < stop <= length:
            raise InputError(f"samples {sample_start}:{stop} are not a span of the clip's {length} samples")
        block_samples = block_frames * self.stft.hop_length
        workers = max(1, threads or os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque = deque()
            for a in range(sample_start, stop, block_samples):
                b = min(stop, a + block_samples)
                j0, j1 = self.stft.frames_touching(a, b, length)
                masks = self.source_masks(j0, j1)  # (S, F, frames)
                pending.append(pool.submit(self._render_block, a, b, j0, j1, masks, residual))
                if len(pending) > workers:
                    yield pending.popleft().result()
                    # callers may read the mapped audio too (the remix does): keep its pages from piling up
                    self.analysis.release_pages()
            while pending:
                yield pending.popleft().result()

    def span_samples(self, start_seconds: float, end_seconds: float) -> tuple[int, int]:
        """Samples ``[a, b)`` of the clip's audio for ``[start_seconds, end_seconds)``, clipped to the clip.

        Raises InputError when the span is empty or reversed after clipping.
        """
        if not (np.isfinite(start_seconds) and np.isfinite(end_seconds)) or end_seconds <= start_seconds:
            raise InputError(f"a span runs from START to a later END seconds; got {start_seconds}:{end_seconds}")
        length = self.num_samples
        a = min(length, max(0, int(round(start_seconds * self.sample_rate))))
        b = min(length, max(0, int(round(end_seconds * self.sample_rate))))
        if b <= a:
            duration = length / self.sample_rate
            raise InputError(f"the span {start_seconds}:{end_seconds} s lies outside the clip (0:{duration:.3f} s)")
        return a, b

    def render_samples(
        self, sample_start: int, sample_stop: int, residual: bool = True, threads: int | None = None
    ) -> StemBlock:
        """Stems (and residual) for samples ``[sample_start, sample_stop)`` only.

        Equal to the same samples of :meth:`render`; the work (FFTs, mask windows, audio read) covers
        only the STFT frames touching the span, so it does not depend on the clip's length. The span
        is cut into one block per worker thread (default: all cores).
        """
        length = self.num_samples
        if not 0 <= sample_start < sample_stop <= length:
            raise InputError(f"samples {sample_start}:{sample_stop} are not a span of the clip's {length} samples")
        workers = max(1, threads or os.cpu_count() or 1)
        span_frames = -(-(sample_stop - sample_start) // self.stft.hop_length)
        block_frames = max(32, -(-span_frames // workers))
        blocks = list(self.iter_blocks(block_frames, residual, workers, sample_start, sample_stop))
        stems = np.concatenate([block.stems for block in blocks], axis=-1)
        rest = np.concatenate([block.residual for block in blocks], axis=-1) if residual else None
        return StemBlock(sample_start, stems, rest, np.concatenate([block.original for block in blocks], axis=-1))

    def render_span(
        self, start_seconds: float, end_seconds: float, residual: bool = True, threads: int | None = None
    ) -> StemBlock:
        """Stems (and residual) for ``[start_seconds, end_seconds)`` of the clip (clipped to its length).

        stems: float32 (sources, channels, n); residual: float32 (channels, n) or None; ``sample_start``
        is where the span begins in the clip's samples. Equal to the same samples of :meth:`render`.
        """
        a, b = self.span_samples(start_seconds, end_seconds)
        return self.render_samples(a, b, residual=residual, threads=threads)

    def render(self, residual: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Whole stems float32 (sources, channels, samples) and residual (channels, samples)."""
        channels = self.analysis.audio.shape[0]
        stems = np.zeros((len(self.sources), channels, self.num_samples), dtype=np.float32)
        rest = np.zeros((channels, self.num_samples), dtype=np.float32) if residual else None
        for block in self.iter_blocks(residual=residual):
            n = block.stems.shape[-1]
            stems[..., block.sample_start : block.sample_start + n] = block.stems
            if rest is not None:
                rest[:, block.sample_start : block.sample_start + n] = block.residual
        return stems, rest
