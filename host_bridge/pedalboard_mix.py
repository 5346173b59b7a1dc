"""Per-stem pedalboards mixed back into the clip's sound, the way pedalboard users work.

    from pedalboard import Compressor, Pedalboard, Reverb
    from host_bridge.pedalboard_mix import StemMixer
    from pixelsep_plugin import recipe as rcp
    from pixelsep_plugin.api import Separator

    separator = Separator()
    recipe = rcp.load("demo-out/duet.json")
    analysis, _ = separator.analyze(recipe.clip.path)
    mixer = StemMixer.from_recipe(separator, analysis, recipe, boards={
        "accordion": Pedalboard([Reverb(room_size=0.6, wet_level=0.3)]),
        "long-drum": Pedalboard([Compressor(threshold_db=-24, ratio=4)]),
    }, tail="ring")
    remix = mixer()                          # float32 (channels, samples) at mixer.sample_rate
    for block in mixer.iter_blocks(4096):    # or streamed: block.remix, block.stems["accordion"]
        ...

Each stem runs through its board block by block (``reset=False``) in the engine's own stage
(:func:`pixelsep_plugin.effects.plugins.pedalboard_stage`), so every processed stem is sample for
sample what ``board(whole_stem, sample_rate)`` gives, whatever the plugins' latencies, and the
streams are mixed in step: ``remix = sum_i g_i * processed_i + g_r * residual``, the gains being
the recipe's (mutes and solos included; all 1 without a recipe). A stem without a board is mixed as
it is; with no boards and every gain at 0 dB the remix is the clip's own sound, bit for bit.
``tail="cut"`` keeps the remix as long as the clip; ``"ring"`` lets reverb and delay tails ring on
past its end, for up to ``tail_seconds``.

:func:`boards_from_recipe` and :func:`effects_from_board` go between a recipe's effect chains and
Pedalboard objects (a VST3 plugin's settings travel as its base64 state; load VST3 plugins with
:func:`load_plugin` so their file is known).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pixelsep_plugin.effects import DEFAULT_TAIL_SECONDS, TAIL_MODES, Chain
from pixelsep_plugin.effects.plugins import effect_from_plugin, load_plugin, pedalboard_stage, plugin_from_effect
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe import Effect, Recipe, linear_gains
from pixelsep_plugin.recipe.render import SampleQueue

if TYPE_CHECKING:
    import pedalboard

    from pixelsep_plugin.api import Separator
    from pixelsep_plugin.runtime.analysis import Analysis
    from pixelsep_plugin.runtime.separate import Separation

__all__ = ["MixBlock", "StemMixer", "boards_from_recipe", "effects_from_board", "load_plugin"]

RESIDUAL = "residual"


@dataclass
class MixBlock:
    """Samples ``[sample_start, sample_start + n)`` of the mix: the remix, float32 (channels, n), and
    each stem after its board (every source and ``"residual"``; a stem without a board as separated),
    float32 (channels, n), before its gain."""

    sample_start: int
    remix: np.ndarray
    stems: dict[str, np.ndarray] = field(default_factory=dict)


def _board_of(board: pedalboard.Pedalboard | pedalboard.Plugin) -> pedalboard.Pedalboard:
    import pedalboard

    if isinstance(board, pedalboard.Pedalboard):
        return board
    if isinstance(board, pedalboard.Plugin):
        return pedalboard.Pedalboard([board])
    raise InputError(f"a stem's effects must be a pedalboard.Pedalboard, not {type(board).__name__}")


def _plugins_in(plugin) -> Iterator:
    """The board itself and every plugin in it, containers opened."""
    import pedalboard

    yield plugin
    if isinstance(plugin, pedalboard.PluginContainer):
        for child in plugin:
            yield from _plugins_in(child)


class StemMixer:
    """Stems through their pedalboards, mixed with the residual and the recipe's gains.

    separation: the clip's sources (:meth:`pixelsep_plugin.api.Separator.separate`, or
    :func:`pixelsep_plugin.api.separation_for` for a recipe's). boards: a ``pedalboard.Pedalboard``
    (or one plugin) per source name or ``"residual"``; None takes the recipe's effect chains
    (:func:`boards_from_recipe`). recipe: the gains, mutes and solos (None: every stem at 0 dB).
    tail: "cut" or "ring"; tail_seconds: how long tails may ring past the clip's end.

    Boards, their parameters and the stems' channels are checked here, before any audio is processed
    (each board processes one block of silence, then is reset). A board belongs to the mixer while it
    renders: give every stem its own board. Each render starts every board afresh."""

    def __init__(
        self,
        separation: Separation,
        boards: Mapping[str, pedalboard.Pedalboard | pedalboard.Plugin] | None = None,
        recipe: Recipe | None = None,
        tail: str = "cut",
        tail_seconds: float = DEFAULT_TAIL_SECONDS,
    ):
        if tail not in TAIL_MODES:
            raise InputError(f"tail must be one of {', '.join(TAIL_MODES)}, not {tail!r}")
        if not 0.0 <= tail_seconds <= 600.0:
            raise InputError(f"tail_seconds must be between 0 and 600, not {tail_seconds:g}")
        self.separation = separation
        self.names = [source.name for source in separation.sources]
        if recipe is not None and [s.name for s in recipe.sources] != self.names:
            raise InputError("the separation's sources are not the recipe's: separate the recipe's sources")
        if boards is None:
            boards = boards_from_recipe(recipe) if recipe is not None else {}
        unknown = [name for name in boards if name not in (*self.names, RESIDUAL)]
        if unknown:
            raise InputError(
                f"a board for {unknown[0]!r}, which is not a stem: name one of {', '.join([*self.names, RESIDUAL])}"
            )
        self.boards = {name: _board_of(board) for name, board in boards.items()}
        seen: dict[int, tuple[object, str]] = {}  # the objects are kept, so that no id is reused meanwhile
        for name, board in self.boards.items():
            for plugin in _plugins_in(board):
                other = seen.get(id(plugin))
                if other is not None and other[0] is plugin and other[1] != name:
                    raise InputError(
                        f"the stems {other[1]!r} and {name!r} share a plugin: give every stem its own board"
                    )
                seen[id(plugin)] = (plugin, name)
        if recipe is not None:
            gains, residual_gain = linear_gains(recipe)
        else:
            gains, residual_gain = [1.0] * len(self.names), 1.0
        self.gains = {**dict(zip(self.names, gains, strict=True)), RESIDUAL: residual_gain}
        self.tail = tail
        self.tail_seconds = float(tail_seconds)
        self._chains()  # every board checked against the stems now, before any audio

    @classmethod
    def from_recipe(
        cls,
        separator: Separator,
        analysis: Analysis,
        recipe: Recipe,
        boards: Mapping[str, pedalboard.Pedalboard | pedalboard.Plugin] | None = None,
        tail: str | None = None,
        tail_seconds: float = DEFAULT_TAIL_SECONDS,
    ) -> StemMixer:
        """The recipe's sources separated on ``analysis`` with ``separator``; ``boards`` default to the
        recipe's effect chains and ``tail`` to its output setting."""
        from pixelsep_plugin.api import separation_for

        separation = separation_for(separator, analysis, recipe)
        return cls(separation, boards, recipe, tail or recipe.output.tail, tail_seconds)

    @property
    def sample_rate(self) -> int:
        return int(self.separation.analysis.sample_rate)

    @property
    def num_channels(self) -> int:
        return self.separation.analysis.num_channels

    @property
    def num_samples(self) -> int:
        """The clip's samples per channel (a ringing tail makes the mix longer)."""
        return int(self.separation.num_samples)

    def _chains(self) -> dict[str, Chain]:
        ring = self.tail == "ring"
        return {
            name: Chain(
                [pedalboard_stage(board, self.sample_rate, self.num_channels, self.tail_seconds if ring else 0.0)],
                self.num_samples,
                self.sample_rate,
                self.tail,
                self.tail_seconds,
            )
            for name, board in self.boards.items()
        }

    def _ready(self, base: SampleQueue, streams: dict[str, SampleQueue], start: int, size: int) -> MixBlock:
        remix = base.pop(size)
        stems = {}
        for name, queue in streams.items():
            stems[name] = queue.pop(size)
            if name in self.boards and self.gains[name] != 0.0:
                remix += np.float32(self.gains[name]) * stems[name]
        return MixBlock(start, remix, stems)

    def iter_blocks(self, block_size: int = 8192) -> Iterator[MixBlock]:
        """The mix as :class:`MixBlock` s of ``block_size`` samples (the last one shorter), in order
        from the clip's first sample, streamed: memory stays bounded by the boards' latencies (except
        for plugins pedalboard cannot stream, see :mod:`pixelsep_plugin.effects.plugins`)."""
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise InputError(f"block_size must be a positive whole number of samples, not {block_size!r}")
        chains = self._chains()
        base = SampleQueue(self.num_channels)  # the clip less the stems that have boards, plus the gains of the rest
        streams = {name: SampleQueue(self.num_channels) for name in (*self.names, RESIDUAL)}
        start = 0
        for block in self.separation.iter_blocks(residual=True):
            mixed = np.array(block.original, dtype=np.float32)
            for name, stem in (*zip(self.names, block.stems, strict=True), (RESIDUAL, block.residual)):
                if name in chains:
                    mixed -= stem
                    streams[name].push(chains[name].process(stem))
                else:
                    if self.gains[name] != 1.0:
                        mixed += np.float32(self.gains[name] - 1.0) * stem
                    streams[name].push(np.asarray(stem, dtype=np.float32))
            base.push(mixed)
            while min(base.size, *(queue.size for queue in streams.values())) >= block_size:
                yield self._ready(base, streams, start, block_size)
                start += block_size
        for name, chain in chains.items():
            streams[name].push(chain.finish())
        remaining = max(base.size, *(queue.size for queue in streams.values()))
        while remaining > 0:
            size = min(block_size, remaining)
            yield self._ready(base, streams, start, size)
            start += size
            remaining -= size

    def render(self) -> MixBlock:
        """The whole mix at once: the remix and every processed stem, float32 (channels, samples)."""
        blocks = list(self.iter_blocks(1 << 16))
        if not blocks:
            empty = np.zeros((self.num_channels, 0), dtype=np.float32)
            return MixBlock(0, empty, {name: empty for name in (*self.names, RESIDUAL)})
        return MixBlock(
            0,
            np.concatenate([b.remix for b in blocks], axis=1),
            {name: np.concatenate([b.stems[name] for b in blocks], axis=1) for name in blocks[0].stems},
        )

    def __call__(self) -> np.ndarray:
        """The remix, float32 (channels, samples) at :attr:`sample_rate`."""
        return self.render().remix


def boards_from_recipe(recipe: Recipe) -> dict[str, pedalboard.Pedalboard]:
    """A ``pedalboard.Pedalboard`` for each source (and the residual) whose effect chain is not empty,
    its plugins made and checked as a render makes them (at the clip's sample rate)."""
    import pedalboard

    chains = [*((s.name, s.effects) for s in recipe.sources), (RESIDUAL, recipe.residual.effects)]
    boards = {}
    for name, effects in chains:
        if not effects:
            continue
        plugins = []
        for effect in effects:
            if effect.plugin.startswith("pixelsep."):
                raise InputError(
                    f"{effect.plugin} on {name} is one of pixelsep's own processors, not a pedalboard plugin: "
                    "render the recipe with `pixelsep render` to use it"
                )
            plugins.append(plugin_from_effect(effect, recipe.clip.sample_rate, recipe.base_folder))
        boards[name] = pedalboard.Pedalboard(plugins)
    return boards


def effects_from_board(board: pedalboard.Pedalboard | pedalboard.Plugin) -> list[Effect]:
    """A board's plugins as a recipe's effect chain (nested chains opened; a parallel ``Mix`` cannot
    be written). A built-in keeps its parameters; a VST3 plugin loaded with :func:`load_plugin` keeps
    its file and its state (base64 of ``raw_state``)."""
    import pedalboard

    if isinstance(board, pedalboard.Chain):  # Pedalboard is a Chain
        return [effect for plugin in board for effect in effects_from_board(plugin)]
    return [effect_from_plugin(board)]
