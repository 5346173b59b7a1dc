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

Only what a render needs is computed, so a span costs the same at any clip length: the masks of the
analysis columns under the span's STFT frames (not of whole windows), the tracking of each clicked
part from its click's time to the span (kept for later renders), the FFTs of the span's frames.
Each mask value depends only on its column, so any span equals the same samples of a whole render.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pixelsep_plugin.audio.stft import Stft, source_stft_size
from pixelsep_plugin.audio.warp import Interp, log_bins_for_frequencies
from pixelsep_plugin.config import AudioFrontEndConfig
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.modelstore import ModelPackage
from pixelsep_plugin.runtime.analysis import Analysis
from pixelsep_plugin.runtime.query import PartTracker, Source, check_part, track_together

HIGH_BAND_MODES = ("extend", "residual")
KEPT_WINDOWS = 6  # component windows kept between blocks and renders (a 10 s span meets 3 or 4)


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

    Construction validates the queries against the clip (frame size, duration); each part is then
    tracked through the sampled frames only as far as renders need (from its click's time to the
    span asked for), and what was tracked is kept, so later spans and renders reuse it. Rendering
    reads the analysis and the clip's audio block by block, and computes masks only for the STFT
    columns of the block.
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
        # Each part is tracked lazily, from its click's time only as far as a render asks, and
        # remembered: a second span, or the same span again, tracks nothing.
        pooled_cache: OrderedDict = OrderedDict()  # shared: parts of the same shape pool each chunk once
        self._trackers = [
            PartTracker(
                part,
                analysis.features,
                analysis.frame_times,
                analysis.width,
                analysis.height,
                search_radius_cells,
                point_reach_cells,
                pooled_cache=pooled_cache,
            )
            for source in self.sources
            for part in source.parts
        ]
        # the rows of the stacked part vectors that belong to each source
        bounds = np.cumsum([0] + [len(source.parts) for source in self.sources])
        self._source_rows = [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(len(self.sources))]
        self._window_vectors: dict[int, np.ndarray] = {}  # window -> (parts, K), alpha folded in
        self._components: OrderedDict[int, np.ndarray] = OrderedDict()  # the last few windows read
        self._reading: dict[int, Future] = {}  # windows being read by a worker (see _prefetch_components)
        self._lock = threading.Lock()
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

    def window_vectors(self, windows: Sequence[int]) -> list[np.ndarray]:
        """Every part's K-vector (alpha folded in) in each of ``windows``: float32 (parts, K) each.

        The max over the sampled frames inside the window of the part's tracked vectors (the
        nearest frame if none). Parts are tracked as far as these windows need, then remembered.
        """
        with self._lock:
            missing = [int(w) for w in windows if int(w) not in self._window_vectors]
            if missing:
                plan, seconds = self.analysis.plan, self.analysis.column_seconds
                spans = {}
                for w in missing:
                    start = int(plan.starts[w])
                    spans[w] = self._trackers[0].frames_in(start * seconds, (start + plan.window) * seconds)
                first = min(f0 for f0, _ in spans.values())
                stop = max(f1 for _, f1 in spans.values())
                tracked = sum(t.tracked_frames for t in self._trackers)
                track_together(self._trackers, first, stop)
                if sum(t.tracked_frames for t in self._trackers) - tracked > 4096:
                    self.analysis.release_pages()  # a long walk read many frames' features; rendering will not
                for w, (f0, f1) in spans.items():
                    vectors = np.stack([tracker.vectors(f0, f1).max(axis=0) for tracker in self._trackers])
                    self._window_vectors[w] = vectors * self.alpha
            return [self._window_vectors[int(w)] for w in windows]

    def _read_components(self, window: int) -> np.ndarray:
        """Window ``window``'s components (K, F, T), as :meth:`Analysis.read_components` gives them; the
        last few read are kept (they do not depend on the click, and neighbouring blocks share windows)."""
        with self._lock:
            if window in self._components:
                self._components.move_to_end(window)
                return self._components[window]
            reading = self._reading.pop(window, None)
        comps = reading.result() if reading is not None else self.analysis.read_components(window)
        with self._lock:
            self._components[window] = comps
            while len(self._components) > KEPT_WINDOWS:
                self._components.popitem(last=False)
        return comps

    def _prefetch_components(self, pool: ThreadPoolExecutor, column_start: int, column_stop: int) -> None:
        """Start reading the windows under columns ``[column_start, column_stop)`` on ``pool`` (at
        most :data:`KEPT_WINDOWS`): reading and decoding a window takes about as long as the masks of
        a block, so the workers do it while the first blocks' masks are made."""
        windows = self.analysis.plan.windows_overlapping(column_start, column_stop)[:KEPT_WINDOWS]
        with self._lock:
            for window in (int(w) for w in windows):
                if window not in self._components and window not in self._reading:
                    self._reading[window] = pool.submit(self.analysis.read_components, window)

    def forget_read_components(self) -> None:
        """Drop the kept component windows (the tracked parts stay): the next render reads afresh."""
        with self._lock:
            self._components.clear()
            self._reading.clear()

    def analysis_masks(self, column_start: int, column_stop: int) -> np.ndarray:
        """Consistent masks on the analysis grid: float32 (sources, F, columns); sum over sources <= 1.

        Only the requested columns are computed: for each window meeting them,
        ``sigmoid(max over a source's parts of (q . S_w[:, :, columns]) + beta)``, weighted by the
        window's taper and normalised by the summed taper (the blend of :mod:`.chunking`).
        """
        plan = self.analysis.plan
        windows = plan.windows_overlapping(column_start, column_stop)
        if windows.size == 0:
            raise ValueError("no window covers the requested columns")
        out = None
        for w, vectors in zip(windows, self.window_vectors(windows), strict=True):
            start = int(plan.starts[w])
            a, b = max(column_start, start), min(column_stop, start + plan.window)
            comps = self._read_components(int(w))[:, :, a - start : b - start].astype(np.float32)  # (K, F, n)
            k, f, n = comps.shape
            logits = vectors @ comps.reshape(k, f * n)  # (parts, F*n)
            masks = np.stack([logits[rows].max(axis=0) for rows in self._source_rows])
            masks = _sigmoid(masks + self.beta).reshape(len(self.sources), f, n)  # sigmoid is monotonic: max of masks
            if out is None:
                out = np.zeros((len(self.sources), f, column_stop - column_start), dtype=np.float32)
            out[..., a - column_start : b - column_start] += masks * plan.taper[a - start : b - start]
        out /= plan.weight_sum[column_start:column_stop]
        total = out.sum(axis=0, keepdims=True)
        return out / np.maximum(total, 1.0)

    def _frame_masks(self, frame_start: int, frame_stop: int) -> np.ndarray:
        """Masks on the clip's own STFT, frame-major: float32 (sources, frames, bins), contiguous."""
        hop_seconds = self.stft.hop_length / self.sample_rate
        positions = np.arange(frame_start, frame_stop) * hop_seconds / self.analysis.column_seconds
        last = self.analysis.num_columns - 1
        c0 = max(0, min(int(np.floor(positions[0])), last - 1))
        c1 = min(last + 1, max(int(np.ceil(positions[-1])) + 1, c0 + 2))
        grid = self.analysis_masks(c0, c1)  # (S, F, columns)
        time_map = Interp.at_positions(positions - c0, c1 - c0)
        columns = np.ascontiguousarray(np.swapaxes(time_map(grid, axis=2), 1, 2))  # (S, frames, F)
        out = np.empty((grid.shape[0], positions.size, self.stft.freq_bins), dtype=np.float32)
        out[:, :, : self._num_low] = self._freq_map(columns, axis=2)
        if self.high_band == "extend":
            top = grid[:, self._top_octave_from :].mean(axis=1)  # (sources, columns)
            out[:, :, self._num_low :] = time_map(top, axis=1)[:, :, None]
        else:
            out[:, :, self._num_low :] = 0.0
        return out

    def source_masks(self, frame_start: int, frame_stop: int) -> np.ndarray:
        """Masks on the clip's own STFT for frames ``[frame_start, frame_stop)``: (sources, bins, frames)."""
        return np.swapaxes(self._frame_masks(frame_start, frame_stop), 1, 2)

    def _render_block(self, a: int, b: int, j0: int, j1: int, masks: np.ndarray, residual: bool) -> StemBlock:
        """STFT of the samples around ``[a, b)``, masked per source, and back (runs in a worker thread).

        masks: float32 (sources, frames, bins) from :meth:`_frame_masks`.
        """
        length = self.num_samples
        first, stop = self.stft.frame_span(j0, j1)
        offset = max(0, first)
        segment = self.analysis.read_audio(offset, min(length, stop))  # the frames cover [a, b)
        spec = np.swapaxes(self.stft.frames(segment, j0, j1, offset=offset, length=length), -1, -2)
        # (channels, frames, bins) complex64, contiguous: its real and imaginary parts are scaled by the
        # mask repeated twice along the bins, the same numbers as a complex product at a third of the cost
        parts = np.ascontiguousarray(spec).view(np.float32)  # (channels, frames, 2 * bins)
        doubled = np.empty(masks.shape + (2,), dtype=np.float32)  # two strided writes: faster than np.repeat
        doubled[..., 0] = masks
        doubled[..., 1] = masks
        masks = doubled.reshape(masks.shape[:-1] + (-1,))
        masked = np.empty((masks.shape[0],) + parts.shape, dtype=np.float32)
        for s in range(masks.shape[0]):
            np.multiply(parts, masks[s], out=masked[s])
        masked = masked.view(np.complex64)  # (sources, channels, frames, bins)
        stems = self.stft.overlap_add(np.swapaxes(masked, -1, -2), j0, a, b, length)  # (S, channels, n)
        original = segment[:, a - offset : b - offset]
        rest = None
        if residual:  # the inverse is linear and exact: the residual mask 1 - sum(masks) gives audio - sum(stems)
            rest = original - stems.sum(axis=0)
        return StemBlock(a, stems, rest, original)

    def iter_blocks(
        self,
        block_frames: int = 64,
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
            # the analysis columns under the span (with a frame's margin each side), read ahead
            column_samples = self.analysis.column_seconds * self.sample_rate
            margin = self.stft.n_fft
            self._prefetch_components(
                pool,
                max(0, int((sample_start - margin) / column_samples) - 1),
                min(self.analysis.num_columns, int((stop + margin) / column_samples) + 2),
            )
            pending: deque = deque()
            for a in range(sample_start, stop, block_samples):
                b = min(stop, a + block_samples)
                j0, j1 = self.stft.frames_touching(a, b, length)
                masks = self._frame_masks(j0, j1)  # (S, frames, bins)
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

        Equal to the same samples of :meth:`render`; the work (FFTs, masks of the STFT columns needed,
        audio read) covers only the STFT frames touching the span, so it does not depend on the
        clip's length. The span is cut into blocks of 64 frames (about 1.5 s at 44.1 kHz: their
        arrays stay in the CPU's caches, which roughly halves the time of one block for the whole
        span), run on ``threads`` workers (default: all cores).
        """
        length = self.num_samples
        if not 0 <= sample_start < sample_stop <= length:
            raise InputError(f"samples {sample_start}:{sample_stop} are not a span of the clip's {length} samples")
        workers = max(1, threads or os.cpu_count() or 1)
        blocks = list(self.iter_blocks(64, residual, workers, sample_start, sample_stop))
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
        channels = self.analysis.num_channels
        stems = np.zeros((len(self.sources), channels, self.num_samples), dtype=np.float32)
        rest = np.zeros((channels, self.num_samples), dtype=np.float32) if residual else None
        for block in self.iter_blocks(residual=residual):
            n = block.stems.shape[-1]
            stems[..., block.sample_start : block.sample_start + n] = block.stems
            if rest is not None:
                rest[:, block.sample_start : block.sample_start + n] = block.residual
        return stems, rest
