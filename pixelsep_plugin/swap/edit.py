"""Swapping a recipe's source for another instrument: its stem transcribed, the notes written as MIDI
beside the recipe, a ``pixelsep.Swap`` entry put first in the source's effect chain."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe import Effect, Recipe
from pixelsep_plugin.swap.instrument import Instrument, check_instrument, soundfont_file
from pixelsep_plugin.swap.loudness import integrated_loudness
from pixelsep_plugin.swap.midi import write_midi
from pixelsep_plugin.swap.plan import PLUGIN, SwapParameters, plan_swap, relative_text
from pixelsep_plugin.swap.transcribe import Note, Transcriber, TranscriptionSettings


@dataclass
class SwapResult:
    """What a swap did: the recipe with the swap (a copy), the MIDI file written, the notes, the
    parameters recorded, and the stem's integrated loudness in LUFS (-inf when silent)."""

    recipe: Recipe
    midi_file: Path
    notes: list[Note]
    parameters: SwapParameters
    stem_lufs: float


def with_swap(recipe: Recipe, source: str, parameters: SwapParameters) -> Recipe:
    """A copy of ``recipe`` whose source ``source`` starts its effect chain with the swap (an earlier swap is replaced)."""
    if recipe.source(source) is None:
        raise InputError(
            f"no source named {source!r} to swap: the sources are {', '.join(s.name for s in recipe.sources)}"
        )
    effect = Effect(PLUGIN, parameters.to_parameters())
    sources = [
        replace(s, effects=[effect, *(e for e in s.effects if e.plugin != PLUGIN)])
        if s.name == source
        else replace(s, effects=list(s.effects))
        for s in recipe.sources
    ]
    return replace(recipe, sources=sources).validate()


def source_stem(separator, analysis, recipe: Recipe, source: str) -> np.ndarray:
    """The source's stem as the recipe's render writes it (unprocessed): float32 (channels, samples)."""
    from pixelsep_plugin.api import separation_for

    names = [s.name for s in recipe.sources]
    if source not in names:
        raise InputError(f"no source named {source!r} to swap: the sources are {', '.join(names)}")
    index = names.index(source)
    separation = separation_for(separator, analysis, recipe)
    blocks = [block.stems[index] for block in separation.iter_blocks(residual=False)]
    if not blocks:
        return np.zeros((analysis.num_channels, 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1)


def check_swap(recipe: Recipe, source: str, instrument: Instrument) -> None:
    """The cheap checks, before any analysis: the source exists, the preset's numbers, the SoundFont file."""
    if recipe.source(source) is None:
        raise InputError(
            f"no source named {source!r} to swap: the sources are {', '.join(s.name for s in recipe.sources)}"
        )
    check_instrument(instrument)
    soundfont_file(instrument)


def swap_source(
    separator,
    analysis,
    recipe: Recipe,
    source: str,
    instrument: Instrument,
    recipe_folder: Path,
    settings: TranscriptionSettings | None = None,
    transcriber: Transcriber | None = None,
) -> SwapResult:
    """Transcribe ``source``'s stem, write ``<prefix>.<source>.mid`` into ``recipe_folder`` and return
    the recipe with the swap to ``instrument`` (loudness-matched and placed like the stem; not saved).

    Raises InputError when the stem has no notes to play (nothing is written then)."""
    check_swap(recipe, source, instrument)
    recipe_folder = Path(recipe_folder)
    stem = source_stem(separator, analysis, recipe, source)
    transcriber = transcriber or Transcriber()
    notes = transcriber.transcribe(stem, analysis.sample_rate, settings)
    if not notes:
        raise InputError(
            f"no notes found in the stem of {source}: nothing to swap (is it a pitched instrument? "
            "a lower --onset-threshold finds quieter notes)"
        )
    midi_file = recipe_folder / f"{recipe.prefix}.{source}.mid"
    write_midi(midi_file, notes, instrument.program if instrument.bank == 0 else 0, track_name=source,
               protect=(recipe.clip.path,))  # fmt: skip
    soundfont_text = None if instrument.soundfont is None else relative_text(instrument.soundfont, recipe_folder)
    parameters = plan_swap(
        stem, analysis.sample_rate, midi_file, instrument, relative_text(midi_file, recipe_folder), soundfont_text
    )
    return SwapResult(
        with_swap(recipe, source, parameters), midi_file, notes, parameters,
        integrated_loudness(stem, analysis.sample_rate),
    )  # fmt: skip
