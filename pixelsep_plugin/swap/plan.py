"""The swap as a recipe records it, and its rendering.

A swap is the effect ``pixelsep.Swap`` at the start of a source's effect chain. Its parameters
(:class:`SwapParameters`, JSON values in the recipe):

- ``midi``: the notes, a Standard MIDI File; a path relative to the recipe's folder (or absolute);
- ``program``, ``bank``: the preset that plays them (General MIDI program 0-127; bank 0, 128 = drums);
- ``soundfont``: a .sf2/.sf3 file (relative to the recipe's folder, or absolute); null: FluidR3_GM;
- ``gain_db``: the loudness match (the stem's integrated loudness minus the rendering's, BS.1770);
  null or absent: measured against the stem at every render;
- ``channel_gains_db``: where the stem sat, one level per channel relative to their mean power;
  null or absent: the SoundFont's own stereo.

:class:`SwapPlayer` plays the MIDI file with the preset at the stem's rate block by block, puts it
on the stem's channels and applies the gain; :func:`render_swap` does it in one piece (measuring the
gain against the stem when none is recorded); :func:`plan_swap` measures the stem for a new swap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.swap.instrument import (
    MAX_GAIN_DB,
    Instrument,
    SoundFontPlayer,
    channel_gains_db,
    check_instrument,
    match_gain_db,
    place,
    render_events,
)
from pixelsep_plugin.swap.midi import read_midi

PLUGIN = "pixelsep.Swap"
KEYS = ("midi", "program", "bank", "soundfont", "gain_db", "channel_gains_db")
REQUIRED_KEYS = ("midi", "program")
MAX_CHANNELS = 64


def _where(what: str) -> str:
    return f"{PLUGIN} {what}"


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{_where(what)} must be a whole number {low}-{high}, not {value!r}")
    return value


def _decibels(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{_where(what)} must be a number of dB, not {value!r}")
    if not -MAX_GAIN_DB - 60 <= value <= MAX_GAIN_DB:
        raise InputError(f"{_where(what)} is {value:g} dB, outside [{-MAX_GAIN_DB - 60:g}, {MAX_GAIN_DB:g}]")
    return float(value)


def _path_text(value: Any, what: str, suffixes: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value or len(value) > 4096:
        raise InputError(f"{_where(what)} must be a file path, not {value!r}")
    if not value.lower().endswith(suffixes):
        raise InputError(f"{_where(what)} must end in {' or '.join(suffixes)}, not {value!r}")
    return value


@dataclass(frozen=True)
class SwapParameters:
    """A swap's parameters as a recipe stores them (see the module docstring)."""

    midi: str
    program: int
    bank: int = 0
    soundfont: str | None = None
    gain_db: float | None = None
    channel_gains_db: tuple[float, ...] | None = None

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> SwapParameters:
        """Read and check an effect's parameters; raises InputError (one line) naming the parameter."""
        if not isinstance(parameters, dict):
            raise InputError(f"{PLUGIN} parameters must be an object")
        unknown = sorted(set(parameters) - set(KEYS))
        if unknown:
            raise InputError(f"{PLUGIN} has no parameter {unknown[0]!r}: its parameters are {', '.join(KEYS)}")
        missing = [k for k in REQUIRED_KEYS if k not in parameters]
        if missing:
            raise InputError(f"{PLUGIN} needs the parameter {missing[0]!r}: run `pixelsep swap` to make the swap")
        soundfont = parameters.get("soundfont")
        gains = parameters.get("channel_gains_db")
        if gains is not None:
            if not isinstance(gains, list) or not 1 <= len(gains) <= MAX_CHANNELS:
                raise InputError(f"{_where('channel_gains_db')} must be a list of 1-{MAX_CHANNELS} numbers (dB)")
            gains = tuple(_decibels(g, "channel_gains_db") for g in gains)
        gain = parameters.get("gain_db")
        return cls(
            midi=_path_text(parameters["midi"], "midi", (".mid", ".midi")),
            program=_whole(parameters["program"], "program", 0, 127),
            bank=_whole(parameters.get("bank", 0), "bank", 0, 128),
            soundfont=None if soundfont is None else _path_text(soundfont, "soundfont", (".sf2", ".sf3")),
            gain_db=None if gain is None else _decibels(gain, "gain_db"),
            channel_gains_db=gains,
        )

    def to_parameters(self) -> dict[str, Any]:
        """The JSON values the recipe stores."""
        return {
            "midi": self.midi,
            "program": self.program,
            "bank": self.bank,
            "soundfont": self.soundfont,
            "gain_db": self.gain_db,
            "channel_gains_db": None if self.channel_gains_db is None else list(self.channel_gains_db),
        }

    def midi_file(self, base_folder: Path | None) -> Path:
        return _resolve(self.midi, base_folder)

    def instrument(self, base_folder: Path | None) -> Instrument:
        soundfont = None if self.soundfont is None else _resolve(self.soundfont, base_folder)
        instrument = Instrument(self.program, self.bank, soundfont)
        check_instrument(instrument)
        return instrument


def _resolve(text: str, base_folder: Path | None) -> Path:
    path = Path(text)
    if path.is_absolute():
        return path
    if base_folder is None:
        raise InputError(f"{PLUGIN}: {text} is relative, but the recipe has no folder to resolve it against")
    return Path(base_folder) / path


def relative_text(path: Path, base_folder: Path) -> str:
    """``path`` as the recipe stores it: relative to ``base_folder`` with '/' when inside it, else absolute."""
    path, base = Path(path).resolve(), Path(base_folder).resolve()
    try:
        return PurePosixPath(*path.relative_to(base).parts).as_posix()
    except ValueError:
        return os.fspath(path)


class SwapPlayer:
    """The swap played block by block at a known gain: memory does not grow with the stem's length.

    ``gain_db``: the gain to play at (None: the parameters' own, 0 dB when they hold none)."""

    def __init__(self, parameters: SwapParameters, base_folder: Path | None, sample_rate: int, num_channels: int,
                 gain_db: float | None = None):  # fmt: skip
        events = read_midi(parameters.midi_file(base_folder))
        self.gains = None if parameters.channel_gains_db is None else list(parameters.channel_gains_db)
        if self.gains is not None and len(self.gains) != num_channels:
            raise InputError(
                f"{_where('channel_gains_db')} has {len(self.gains)} channels, the stem {num_channels}: "
                "run `pixelsep swap` again"
            )
        self.num_channels = num_channels
        gain_db = parameters.gain_db if gain_db is None else gain_db
        self.scale = np.float32(10 ** ((gain_db or 0.0) / 20))
        self.player = SoundFontPlayer(parameters.instrument(base_folder), sample_rate)
        self.player.play(events)

    def next(self, num_samples: int) -> np.ndarray:
        """The next ``num_samples`` of the swapped instrument, float32 (num_channels, num_samples)."""
        out = place(self.player.generate(num_samples), self.num_channels, self.gains)
        out *= self.scale
        return out


def render_swap(
    parameters: SwapParameters,
    base_folder: Path | None,
    sample_rate: int,
    num_channels: int,
    num_samples: int,
    stem: Callable[[], np.ndarray] | None = None,
    tail_samples: int = 0,
) -> np.ndarray:
    """The swapped instrument, float32 (num_channels, num_samples + tail_samples) at ``sample_rate``, whole.

    ``stem()``: the unprocessed stem (channels, num_samples), asked for only when the parameters hold
    no gain (then the gain is measured against it; a silent stem or rendering gets 0 dB)."""
    measure = parameters.gain_db is None and stem is not None
    player = SwapPlayer(parameters, base_folder, sample_rate, num_channels, 0.0 if measure else None)
    audio = player.next(num_samples + tail_samples)
    if measure:
        gain_db = match_gain_db(stem(), audio[:, :num_samples], sample_rate) or 0.0
        audio *= np.float32(10 ** (gain_db / 20))
    return audio


def plan_swap(
    stem: np.ndarray,
    sample_rate: int,
    midi_file: Path,
    instrument: Instrument,
    midi_text: str,
    soundfont_text: str | None,
) -> SwapParameters:
    """The parameters of a swap of ``stem`` (float (channels, n)) for the notes in ``midi_file``: the
    stem's channel levels and the gain that matches the rendering's loudness to the stem's (0 dB when
    either is silent). ``midi_text``, ``soundfont_text``: the paths as the recipe will store them."""
    num_channels, num_samples = stem.shape
    gains = channel_gains_db(stem) if num_channels > 1 else None
    rendered = render_events(read_midi(midi_file), instrument, sample_rate, num_samples)
    placed = place(rendered, num_channels, gains)
    gain_db = match_gain_db(stem, placed, sample_rate)
    return SwapParameters(
        midi=midi_text,
        program=instrument.program,
        bank=instrument.bank,
        soundfont=soundfont_text,
        gain_db=0.0 if gain_db is None else gain_db,
        channel_gains_db=None if gains is None else tuple(gains),
    )
