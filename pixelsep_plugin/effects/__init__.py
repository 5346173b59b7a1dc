"""Effect chains: what a recipe's ``effects`` lists do to a stem, streamed block by block.

An effect is named by its ``plugin``: a pedalboard built-in plugin's class name (``"Reverb"``), the
path of a VST3 plugin (``".../Plugin.vst3"``, with its saved state), or one of pixelsep's own
processors (``"pixelsep.<Name>"``: cleanup in :mod:`.cleanup`, the instrument swap in :mod:`.swap`;
pedalboard and VST3 plugins are in :mod:`.plugins`). Each name maps to a builder in
:data:`BUILDERS` (by exact name) or is matched by :func:`builder_for` (by kind), and a builder
returns a :class:`Stage`.

A stage is streamed: ``process(block)`` takes float32 (channels, n) and returns whatever output is
ready (possibly fewer samples while a plugin fills its latency), ``flush()`` returns the rest. A
stage's output stream is aligned with its input: output sample i belongs to input sample i (a
stage with latency drops its first ``latency`` samples out). :class:`Chain` runs stages in order
and keeps the stream exactly as long as the stem (``tail="cut"``) or lets reverb and delay tails
ring on for ``tail_seconds`` after it (``tail="ring"``).

Some processors need to know the whole stem before they start (its loudness, its hum, its notes):
builders get a :class:`StemContext` that renders the unprocessed stem on request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pixelsep_plugin.errors import InputError, PixelsepWarning

TAIL_MODES = ("cut", "ring")


class EffectWarning(PixelsepWarning):
    """An effect could not do all of its work on a stem (one line: which effect, which stem, why); renders
    collect these into their warnings."""


DEFAULT_TAIL_SECONDS = 5.0


class Stage(Protocol):
    """One streamed effect. Output sample i belongs to input sample i (latency already removed)."""

    def process(self, block: np.ndarray) -> np.ndarray:
        """float32 (channels, n) in; float32 (channels, m) out, m >= 0, in stream order."""
        ...

    def flush(self) -> np.ndarray:
        """The output still held back (latency, and any tail the effect makes after its input ends),
        after which the stage has returned at least as many samples as it was given."""
        ...


@dataclass
class StemContext:
    """What a builder may ask about the stem its chain processes.

    name: the source's name ("residual" for the residual). sample_rate, num_channels, num_samples:
    the stem's. iter_stem(): the unprocessed stem again, float32 (channels, n) blocks from its first
    sample (a render of its own: call it once, when the effect needs the whole stem first).
    base_folder: the folder relative paths in parameters are resolved against (the recipe's)."""

    name: str
    sample_rate: int
    num_channels: int
    num_samples: int
    iter_stem: Callable[[], Iterator[np.ndarray]]
    base_folder: object = None
    cache: dict = field(default_factory=dict)

    def stem(self) -> np.ndarray:
        """The whole unprocessed stem, float32 (channels, num_samples) (kept after the first call)."""
        if "stem" not in self.cache:
            blocks = list(self.iter_stem())
            self.cache["stem"] = (
                np.concatenate(blocks, axis=1) if blocks else np.zeros((self.num_channels, 0), dtype=np.float32)
            )
        return self.cache["stem"]


Builder = Callable[["object", StemContext], Stage]  # (Effect, context) -> Stage

# exact plugin name -> builder; modules that provide effects add theirs on import (see _load)
BUILDERS: dict[str, Builder] = {}
# (predicate on the plugin name, module to import): where builders for a kind of name live
_PROVIDERS: list[tuple[Callable[[str], bool], str, str]] = [  # (matches the name, module, the extra it needs)
    (lambda name: name == "pixelsep.Swap", "pixelsep_plugin.effects.swap", "swap"),
    (lambda name: name.startswith("pixelsep."), "pixelsep_plugin.effects.cleanup", "cleanup"),
    (
        lambda name: name.lower().endswith((".vst3", ".component")) or "/" in name or "\\" in name,
        "pixelsep_plugin.effects.plugins",
        "effects",
    ),  # fmt: skip
    (lambda name: name[:1].isupper(), "pixelsep_plugin.effects.plugins", "effects"),
]


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: ``@register("pixelsep.Loudness")`` makes a function the builder of that plugin name."""

    def add(builder: Builder) -> Builder:
        BUILDERS[name] = builder
        return builder

    return add


def builder_for(plugin: str) -> Builder:
    """The builder of a plugin name; raises InputError (one line) for a name nothing provides."""
    import importlib

    if plugin in BUILDERS:
        return BUILDERS[plugin]
    for matches, module, extra in _PROVIDERS:
        if matches(plugin):
            try:
                provider = importlib.import_module(module)
            except ImportError as error:
                raise InputError(f"effect {plugin!r} needs {error.name}: pip install 'pixelsep[{extra}]'") from None
            if plugin in BUILDERS:
                return BUILDERS[plugin]
            find = getattr(provider, "find_builder", None)
            builder = find(plugin) if find is not None else None
            if builder is not None:
                return builder
    raise InputError(
        f"unknown effect {plugin!r}: name a pedalboard plugin (e.g. Reverb), a .vst3 file or a pixelsep.* processor"
    )


class Chain:
    """Stages run in order over one stem, the output kept aligned with the stem's samples.

    num_samples: the stem's length. tail: "cut" (the output is exactly as long as the stem) or
    "ring" (up to ``tail_seconds`` more, for reverb and delay tails; the remix grows by the longest)."""

    def __init__(self, stages: list[Stage], num_samples: int, sample_rate: int, tail: str = "cut",
                 tail_seconds: float = DEFAULT_TAIL_SECONDS):  # fmt: skip
        if tail not in TAIL_MODES:
            raise InputError(f"tail must be one of {', '.join(TAIL_MODES)}, not {tail!r}")
        self.stages = stages
        self.num_samples = num_samples
        self.limit = num_samples + (int(round(tail_seconds * sample_rate)) if tail == "ring" else 0)
        self.emitted = 0

    def _through(self, block: np.ndarray, start: int = 0) -> np.ndarray:
        for stage in self.stages[start:]:
            block = stage.process(block)
        return block

    def _emit(self, out: np.ndarray) -> np.ndarray:
        room = max(0, self.limit - self.emitted)
        out = out[:, :room]
        self.emitted += out.shape[1]
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        return self._emit(self._through(np.asarray(block, dtype=np.float32)))

    def finish(self) -> np.ndarray:
        """The rest of the output: up to the stem's length, or its length plus the tail ("ring")."""
        pieces = []
        for index, stage in enumerate(self.stages):
            pieces.append(self._through(stage.flush(), index + 1))
        channels = pieces[0].shape[0] if pieces else 0
        out = np.concatenate(pieces, axis=1) if pieces else np.zeros((channels, 0), np.float32)
        out = self._emit(out)
        short = self.num_samples - self.emitted
        if short > 0:  # effects that hand back fewer samples than they were given: the stem stays its length
            out = np.concatenate([out, np.zeros((out.shape[0], short), np.float32)], axis=1)
            self.emitted += short
        return out


def build_chain(effects: list, context: StemContext, tail: str = "cut") -> Chain:
    """A :class:`Chain` for a recipe's effect list (``recipe.Effect`` entries) on one stem."""
    stages = [builder_for(effect.plugin)(effect, context) for effect in effects]
    return Chain(stages, context.num_samples, context.sample_rate, tail)


def check_effects(effects: list, context: StemContext) -> None:
    """Build every stage once (checking names and parameters) without processing audio; raises InputError."""
    for effect in effects:
        builder_for(effect.plugin)(effect, context)
