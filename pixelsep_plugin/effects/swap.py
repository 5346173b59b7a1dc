"""``pixelsep.Swap``: the source's part played by another instrument, in place of its stem.

The stage plays the swap's MIDI file with its SoundFont preset (see :mod:`pixelsep_plugin.swap.plan`
for the parameters) block by block in step with the stem, from its first block on: output sample i
is the new instrument at the stem's sample i, and the stem itself is not heard through it. With the
loudness match recorded (as ``pixelsep swap`` records it) memory does not grow with the stem's
length; without one, the stage renders the whole part at its first block and measures it against
the stem. What the last notes ring on after the stem ends comes out at ``flush()`` (kept
when the render's tail rings, cut otherwise). Building the stage checks the parameters and that the
MIDI file and SoundFont exist, without rendering.
"""

from __future__ import annotations

import numpy as np

from pixelsep_plugin.effects import StemContext, register
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.swap.instrument import soundfont_file
from pixelsep_plugin.swap.plan import PLUGIN, SwapParameters, SwapPlayer, render_swap

RELEASE_SECONDS = 2.0  # how long the rendering runs on past the stem's end, for the last notes' release


class SwapStage:
    """Hands out the swapped instrument aligned with the stem (see the module docstring)."""

    def __init__(self, parameters: SwapParameters, context: StemContext):
        self.parameters = parameters
        self.context = context
        self.player: SwapPlayer | None = None  # with a recorded gain: played block by block
        self.audio: np.ndarray | None = None  # without: rendered whole, the gain measured against the stem
        self.position = 0  # input samples seen (= output samples handed out by process)
        self.tail_samples = int(round(RELEASE_SECONDS * context.sample_rate))

    def _next(self, num_samples: int) -> np.ndarray:
        context = self.context
        if self.player is None and self.audio is None:
            if self.parameters.gain_db is not None:
                self.player = SwapPlayer(
                    self.parameters, context.base_folder, context.sample_rate, context.num_channels
                )
            else:
                self.audio = render_swap(
                    self.parameters, context.base_folder, context.sample_rate, context.num_channels,
                    context.num_samples, stem=context.stem, tail_samples=self.tail_samples,
                )  # fmt: skip
        start = self.position
        self.position += num_samples
        if self.player is not None:
            return self.player.next(num_samples)
        out = self.audio[:, start : start + num_samples]
        if out.shape[1] < num_samples:  # more input than the stem was said to have
            out = np.concatenate([out, np.zeros((out.shape[0], num_samples - out.shape[1]), np.float32)], axis=1)
        return np.ascontiguousarray(out, dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        return self._next(np.asarray(block).shape[-1])

    def flush(self) -> np.ndarray:
        """What rings on after the stem: the rest of a release tail of RELEASE_SECONDS past its end."""
        end = max(self.position, self.context.num_samples + self.tail_samples)
        return self._next(end - self.position)


@register(PLUGIN)
def build_swap(effect, context: StemContext) -> SwapStage:
    """The stage of a recipe's ``pixelsep.Swap`` entry; raises InputError (one line) for bad parameters,
    a missing MIDI file or SoundFont."""
    parameters = SwapParameters.from_parameters(effect.parameters)
    midi = parameters.midi_file(context.base_folder)
    if not midi.is_file():
        raise InputError(f"{PLUGIN} on {context.name}: MIDI file {midi} not found (run `pixelsep swap` again)")
    soundfont_file(parameters.instrument(context.base_folder))
    gains = parameters.channel_gains_db
    if gains is not None and len(gains) != context.num_channels:
        raise InputError(
            f"{PLUGIN} on {context.name}: made for {len(gains)} channels, the stem has {context.num_channels} "
            "(run `pixelsep swap` again)"
        )
    return SwapStage(parameters, context)


def find_builder(name: str):
    """The builder of ``name`` when it is this module's effect, else None."""
    return build_swap if name == PLUGIN else None
