"""The live preview over the engine's public API, without Qt.

A :class:`PreviewSession` holds the clip's analysis and the recipe being edited. The stems depend only
on the sources' parts (:func:`.model.source_signature`); gains, mutes and solos change only the
remix, which is mixed from the stems whenever audio is asked for. So:

- a gain, mute or solo change is heard at the next buffer: :meth:`PreviewSession.remix` mixes with the
  recipe's current gains (microseconds per buffer);
- a click or a removed source makes a new :class:`~pixelsep_plugin.runtime.separate.Separation` and
  throws the rendered chunks away; chunks of ``chunk_seconds`` (0.25 s) are then rendered with
  ``Separation.render_samples``, the playhead's chunk first and those ahead of it next
  (:func:`.model.chunk_order`), so the click is heard after one short chunk whatever the clip's
  length. Until a chunk is rendered, the clip's own sound plays there.

Rendered chunks are kept in a bounded cache (least recently used out), so memory does not grow with
the clip's length. :meth:`render_next` is meant to run in one worker thread; everything else may be
called from the UI thread.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from host_bridge.app import model
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.api import Separator
from pixelsep_plugin.runtime.analysis import Analysis
from pixelsep_plugin.runtime.separate import Separation

CHUNK_SECONDS = 0.25  # short: an edit waits for at most one chunk in flight, then renders one
AHEAD_SECONDS = 30.0  # how far ahead of the playhead chunks are rendered in the background
BEHIND_SECONDS = 2.0
MAX_CACHED_SECONDS = 40.0  # rendered chunks kept (30 s ahead, 2 s behind, and a little of where playback was)


@dataclass
class Chunk:
    """Stems and the original audio of samples ``[sample_start, sample_start + n)``, float32."""

    sample_start: int
    stems: np.ndarray  # (sources, channels, n)
    original: np.ndarray  # (channels, n)


@dataclass(frozen=True)
class Rendered:
    """A chunk that :meth:`PreviewSession.render_next` finished: its index, the generation of the
    edit it belongs to, and when (``time.perf_counter()``) it was stored."""

    index: int
    generation: int
    finished: float


class PreviewSession:
    """The clip's analysis, the recipe being heard, and its rendered chunks."""

    def __init__(
        self,
        separator: Separator,
        analysis: Analysis,
        recipe: rcp.Recipe,
        chunk_seconds: float = CHUNK_SECONDS,
        ahead_seconds: float = AHEAD_SECONDS,
        behind_seconds: float = BEHIND_SECONDS,
        max_cached_seconds: float = MAX_CACHED_SECONDS,
        threads: int | None = None,
    ):
        self.separator, self.analysis = separator, analysis
        self.sample_rate = analysis.sample_rate
        self.num_samples = int(analysis.meta["media"]["num_samples"])
        self.num_channels = int(analysis.audio.shape[0])
        self.chunk_samples = max(1024, int(round(chunk_seconds * self.sample_rate)))
        self.num_chunks = model.chunk_count(self.num_samples, self.chunk_samples)
        self.ahead_chunks = int(np.ceil(ahead_seconds / chunk_seconds))
        self.behind_chunks = int(np.ceil(behind_seconds / chunk_seconds))
        self.max_chunks = max(self.ahead_chunks + self.behind_chunks + 2, int(max_cached_seconds / chunk_seconds))
        self.threads = threads
        self._lock = threading.Lock()
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._separation: Separation | None = None
        self._signature: tuple | None = None
        self.generation = 0
        self.edited_at = time.perf_counter()  # when the stems last changed (for latency measurements)
        self.playhead_samples = 0
        self.recipe = copy.deepcopy(recipe)
        self._gains, self._residual_gain = rcp.linear_gains(self.recipe)
        self.set_recipe(recipe)

    # -- the edit --------------------------------------------------------------------------------

    def set_recipe(self, recipe: rcp.Recipe) -> bool:
        """Hear ``recipe`` from now on. Returns True when its stems must be rendered again (its
        sources' parts changed), False when only the gains changed (heard at the next buffer)."""
        recipe = copy.deepcopy(recipe)
        gains, residual_gain = rcp.linear_gains(recipe)
        signature = model.source_signature(recipe)
        with self._lock:
            self.recipe, self._gains, self._residual_gain = recipe, gains, residual_gain
            if signature == self._signature:
                return False
            self._signature = signature
            self._separation = None
            self._chunks.clear()
            self.generation += 1
            self.edited_at = time.perf_counter()
        return True

    @property
    def has_sources(self) -> bool:
        return bool(self.recipe.sources)

    def set_playhead(self, seconds: float) -> None:
        """Where playback is (seconds): the chunks around it are rendered first."""
        self.playhead_samples = int(min(max(0.0, seconds), self.num_samples / self.sample_rate) * self.sample_rate)

    # -- rendering (one worker thread) --------------------------------------------------------------

    def warm_up(self) -> float:
        """Render a short span once with a throw-away source, so that the first click does not pay for
        the first FFT plans, thread start-up and page-ins (about half a second). Returns the seconds it took."""
        from pixelsep_plugin.runtime.query import Point, Source

        started = time.perf_counter()
        clip = self.recipe.clip
        centre = Source("warm-up", (Point(clip.width / 2, clip.height / 2, 0.0),))
        separation = self.separator.separate(self.analysis, [centre])
        separation.render_samples(0, min(self.num_samples, self.chunk_samples), residual=False, threads=self.threads)
        return time.perf_counter() - started

    def pending_chunk(self) -> int | None:
        """The next chunk to render (the playhead's first), or None when all near it are done."""
        if not self.recipe.sources:
            return None
        playhead_chunk = min(self.num_chunks - 1, self.playhead_samples // self.chunk_samples)
        with self._lock:
            for index in model.chunk_order(playhead_chunk, self.num_chunks, self.ahead_chunks, self.behind_chunks):
                if index not in self._chunks:
                    return index
        return None

    def render_next(self) -> Rendered | None:
        """Render the most wanted chunk (see :meth:`pending_chunk`); None when there is nothing to do
        or the edit changed meanwhile (the result is then dropped)."""
        index = self.pending_chunk()
        if index is None:
            return None
        with self._lock:
            generation, separation, recipe = self.generation, self._separation, self.recipe
        if separation is None:
            separation = self.separator.separate(self.analysis, rcp.engine_sources(recipe), recipe.output.high_band)
            with self._lock:
                if generation != self.generation:
                    return None
                self._separation = separation
        a, b = model.chunk_bounds(index, self.chunk_samples, self.num_samples)
        block = separation.render_samples(a, b, residual=False, threads=self.threads)
        with self._lock:
            if generation != self.generation:
                return None
            self._chunks[index] = Chunk(a, block.stems, block.original)
            self._chunks.move_to_end(index)
            while len(self._chunks) > self.max_chunks:
                self._chunks.popitem(last=False)
        return Rendered(index, generation, time.perf_counter())

    def is_rendered(self, sample_start: int, sample_stop: int) -> bool:
        """Whether every chunk of samples ``[sample_start, sample_stop)`` holds the current edit's stems
        (always True without sources: the remix is then the original)."""
        if not self.recipe.sources:
            return True
        first, last = sample_start // self.chunk_samples, (max(sample_start + 1, sample_stop) - 1) // self.chunk_samples
        with self._lock:
            return all(i in self._chunks for i in range(first, min(last, self.num_chunks - 1) + 1))

    # -- the sound --------------------------------------------------------------------------------

    def remix(self, sample_start: int, num_samples: int) -> np.ndarray:
        """The remix of samples ``[sample_start, sample_start + num_samples)`` with the recipe's current
        gains: float32 (channels, num_samples), zeros past the clip's end. Where a chunk is not
        rendered yet it is the clip's own sound."""
        out = np.zeros((self.num_channels, num_samples), dtype=np.float32)
        stop = min(self.num_samples, sample_start + num_samples)
        position = max(0, sample_start)
        while position < stop:
            index = position // self.chunk_samples
            a, b = model.chunk_bounds(index, self.chunk_samples, self.num_samples)
            end = min(b, stop)
            with self._lock:
                chunk = self._chunks.get(index) if self.recipe.sources else None
                gains, residual_gain = self._gains, self._residual_gain
            if chunk is not None:
                piece = model.remix_from_stems(
                    chunk.original[:, position - a : end - a], chunk.stems[:, :, position - a : end - a],
                    gains, residual_gain,
                )  # fmt: skip
            else:
                # no source: everything is the residual; stems not rendered yet: the clip's own sound
                piece = self.analysis.read_audio(position, end)
                if not gains and residual_gain != 1.0:
                    piece = piece * np.float32(residual_gain)
            out[:, position - sample_start : end - sample_start] = piece
            position = end
        return out
