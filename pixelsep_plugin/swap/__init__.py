"""Swapping an instrument: a stem's notes transcribed, written as MIDI and played by another instrument.

    transcriber = Transcriber()                        # the Basic Pitch network, ONNX Runtime
    notes = transcriber.transcribe(stem, 44100)        # [Note(onset_seconds, offset_seconds, pitch, velocity)]
    write_midi("violin.mid", notes, program=find_program("Trumpet"))
    # a recipe's source: transcribed, its MIDI file written beside the recipe, the swap first in its chain
    result = swap_source(separator, analysis, recipe, "violin", Instrument(56), Path("edit"))
    pixelsep_plugin.recipe.save(result.recipe, "edit/edit.json")

- :mod:`.transcribe`: audio to notes (the ``basic-pitch`` wheel's ``nmp.onnx``, own framing and note making);
- :mod:`.midi`: Standard MIDI Files, General MIDI program names;
- :mod:`.instrument`: SoundFont presets rendered with TinySoundFont, placed and loudness-matched;
- :mod:`.loudness`: BS.1770 integrated loudness;
- :mod:`.plan`: the swap's parameters in a recipe and their rendering (the effect is
  :mod:`pixelsep_plugin.effects.swap`);
- :mod:`.edit`: a recipe's source swapped.
"""

from pixelsep_plugin.swap.edit import SwapResult, source_stem, swap_source, with_swap
from pixelsep_plugin.swap.instrument import Instrument, default_soundfont, render_events
from pixelsep_plugin.swap.loudness import integrated_loudness
from pixelsep_plugin.swap.midi import GM_PROGRAMS, find_program, notes_of, program_name, read_midi, write_midi
from pixelsep_plugin.swap.plan import PLUGIN, SwapParameters, SwapPlayer, render_swap
from pixelsep_plugin.swap.transcribe import Note, Transcriber, TranscriptionSettings, transcribe

__all__ = [
    "GM_PROGRAMS",
    "PLUGIN",
    "Instrument",
    "Note",
    "SwapParameters",
    "SwapPlayer",
    "SwapResult",
    "Transcriber",
    "TranscriptionSettings",
    "default_soundfont",
    "find_program",
    "integrated_loudness",
    "notes_of",
    "program_name",
    "read_midi",
    "render_events",
    "render_swap",
    "source_stem",
    "swap_source",
    "transcribe",
    "with_swap",
    "write_midi",
]
