"""``pixelsep swap RECIPE --source NAME --to PROGRAM``: a source's part played by another instrument.

Renders the source's stem (the clip's analysis comes from the cache when it is there), transcribes
its notes, writes them to ``<prefix>.<source>.mid`` beside the recipe, and puts a ``pixelsep.Swap``
entry first in the source's effect chain (replacing an earlier swap), loudness-matched to the stem.
``pixelsep render RECIPE`` then writes the swapped part as ``<prefix>.<source>.fx.<ext>`` and mixes it
into the remix in the stem's place; the stem itself stays as separated.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from pixelsep_plugin.errors import InputError


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a number between 0 and 1, not {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"give a number between 0 and 1, not {text}")
    return value


def add_parser(commands) -> None:
    swap = commands.add_parser(
        "swap",
        help="play a source's part with another instrument (General MIDI program from a SoundFont)",
        description=(
            "Transcribes the source's stem into notes (the Basic Pitch network), writes them as PREFIX.SOURCE.mid "
            "beside the recipe and records a pixelsep.Swap effect at the start of the source's effect chain, "
            "loudness-matched to the stem. `pixelsep render RECIPE` then renders the remix with the new instrument."
        ),
    )
    swap.add_argument("recipe", type=Path)
    swap.add_argument("--source", required=True, metavar="NAME", help="the source to swap")
    swap.add_argument(
        "--to", required=True, metavar="PROGRAM",
        help="General MIDI program: a number 0-127, a name such as 'Electric Guitar (clean)' or a unique part of one",
    )  # fmt: skip
    swap.add_argument("--soundfont", type=Path, metavar="PATH", help="a .sf2/.sf3 SoundFont (default: FluidR3_GM)")
    swap.add_argument(
        "--bank", type=int, default=0, help="the SoundFont bank of the preset (default 0; 128: drum kits)"
    )
    # None: the transcription's own default (pixelsep_plugin.swap.TranscriptionSettings), named in the help
    swap.add_argument("--onset-threshold", type=_probability, metavar="P",
                      help="how sure the network must be that a note starts (default 0.7; lower finds quieter notes, "
                      "and more of other performers' bleed)")  # fmt: skip
    swap.add_argument("--frame-threshold", type=_probability, metavar="P",
                      help="how sure it must be that a note still sounds (default 0.5)")  # fmt: skip
    swap.add_argument("--min-note", type=float, metavar="SECONDS", help="shortest note kept (default 0.12 s)")
    swap.add_argument("--relink", type=Path, metavar="PATH", help="the recipe's clip, moved to PATH")
    swap.add_argument("--accept-changed-clip", action="store_true", help="use a clip whose sha256 differs")
    swap.add_argument("--accept-other-model", action="store_true", help="use a model other than the recipe's")
    swap.add_argument("--model", help="model folder or id (default: the recipe's)")
    swap.add_argument("--cache-dir", type=Path, help="where analyses are kept (default: ~/.cache/pixelsep)")
    swap.add_argument("--no-cache", action="store_true", help="analyse again and keep nothing")
    swap.add_argument("--threads", type=int, help="CPU threads for the nets (default: all cores)")
    swap.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _db(value: float) -> str:
    return f"{value:+.1f} dB"


def run(args) -> int:
    from host_bridge.cli.edit import _analyse, _open_recipe
    from pixelsep_plugin import recipe as rcp
    from pixelsep_plugin.swap import Instrument, Transcriber, TranscriptionSettings, find_program, swap_source
    from pixelsep_plugin.swap.edit import check_swap
    from pixelsep_plugin.swap.instrument import SoundFontPlayer
    from pixelsep_plugin.swap.transcribe import model_path

    if args.recipe.suffix.lower() != ".json":
        raise InputError(f"a recipe is a .json file, not {args.recipe.name}")
    program = find_program(args.to)
    soundfont = args.soundfont.resolve() if args.soundfont is not None else None
    instrument = Instrument(program, args.bank, soundfont)
    given = {"onset_threshold": args.onset_threshold, "frame_threshold": args.frame_threshold,
             "minimum_note_seconds": args.min_note}  # fmt: skip
    settings = TranscriptionSettings(**{k: v for k, v in given.items() if v is not None}).check()
    model_path()  # the transcription network is installed
    recipe, separator = _open_recipe(args)
    check_swap(recipe, args.source, instrument)
    SoundFontPlayer(instrument, recipe.clip.sample_rate)  # the preset exists in the SoundFont
    analysis = _analyse(separator, recipe.clip.path, args.quiet)
    recipe_folder = args.recipe.resolve().parent
    result = swap_source(separator, analysis, recipe, args.source, instrument, recipe_folder, settings,
                         Transcriber(threads=args.threads))  # fmt: skip
    saved = rcp.save(result.recipe, args.recipe)
    notes, parameters = result.notes, result.parameters
    pitches = [n.pitch for n in notes]
    print(f"swapped {args.source} for {instrument.describe()}:")
    loudness = f"{result.stem_lufs:.1f} LUFS" if math.isfinite(result.stem_lufs) else "silent"
    print(f"  notes: {len(notes)} (MIDI {min(pitches)}-{max(pitches)}) from the stem ({loudness})")
    print(f"  midi: {result.midi_file}")
    placement = ""
    if parameters.channel_gains_db is not None:
        placement = ", channels " + " / ".join(_db(g) for g in parameters.channel_gains_db)
    print(f"  loudness match: {_db(parameters.gain_db or 0.0)}{placement}")
    chain = ", ".join(e.plugin for e in result.recipe.source(args.source).effects)
    print(f"  recipe: {saved} ({args.source}'s effects: {chain})")
    if not math.isfinite(result.stem_lufs):
        print(f"warning: the stem of {args.source} is silent: the swap is not loudness-matched", file=sys.stderr)
    print(f"render it: pixelsep render {args.recipe}")
    return 0
