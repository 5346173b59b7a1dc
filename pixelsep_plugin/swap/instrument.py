"""Playing notes with another instrument: a SoundFont preset rendered by TinySoundFont, placed and
loudness-matched like the stem it replaces.

An :class:`Instrument` is a preset (program and bank) of a SoundFont (.sf2/.sf3; by default
FluidR3_GM, Debian's ``fluid-soundfont-gm``). :func:`render_events` plays a MIDI file's events with
it at any sample rate; every channel of the file plays the preset (bank 128 is a drum kit).
:func:`channel_gains_db` reads where the stem sits between its channels, :func:`place` puts the
rendering there, and :func:`match_gain_db` is the gain that brings it to the stem's integrated
loudness (BS.1770, :mod:`.loudness`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.swap.loudness import integrated_loudness
from pixelsep_plugin.swap.midi import DRUM_BANK, MidiEvent, program_name

DEFAULT_SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf3/FluidR3_GM.sf3"))
SOUNDFONT_SUFFIXES = (".sf2", ".sf3")
MAX_GAIN_DB = 40.0  # the loudness match never boosts or cuts more than this
RENDER_CHUNK_SAMPLES = 1 << 14  # the synthesizer's grid of stretches


@dataclass(frozen=True)
class Instrument:
    """A SoundFont preset. soundfont: a .sf2/.sf3 file; None: the default General MIDI SoundFont."""

    program: int
    bank: int = 0
    soundfont: Path | None = None

    def describe(self) -> str:
        where = "" if self.soundfont is None else f" from {Path(self.soundfont).name}"
        return f"{program_name(self.program, self.bank)} (program {self.program}, bank {self.bank}){where}"


def default_soundfont() -> Path:
    """The General MIDI SoundFont used when none is named; raises InputError when it is not installed."""
    for path in DEFAULT_SOUNDFONTS:
        if path.is_file():
            return path
    raise InputError(
        "no General MIDI SoundFont found (FluidR3_GM): apt-get install fluid-soundfont-gm, or give --soundfont PATH"
    )


def soundfont_file(instrument: Instrument) -> Path:
    """The instrument's SoundFont file, checked to exist; raises InputError."""
    if instrument.soundfont is None:
        return default_soundfont()
    path = Path(instrument.soundfont)
    if path.suffix.lower() not in SOUNDFONT_SUFFIXES:
        raise InputError(f"a SoundFont is a .sf2 or .sf3 file, not {path.name}")
    if not path.is_file():
        raise InputError(f"SoundFont {path} not found")
    return path


def check_instrument(instrument: Instrument) -> None:
    """Raise InputError (one line) unless program and bank are in range (before loading anything)."""
    if (
        isinstance(instrument.program, bool)
        or not isinstance(instrument.program, int)
        or not 0 <= instrument.program <= 127
    ):
        raise InputError(f"program must be a whole number 0-127, not {instrument.program!r}")
    if (
        isinstance(instrument.bank, bool)
        or not isinstance(instrument.bank, int)
        or not 0 <= instrument.bank <= DRUM_BANK
    ):
        raise InputError(f"bank must be a whole number 0-{DRUM_BANK}, not {instrument.bank!r}")


class SoundFontPlayer:
    """One SoundFont loaded at one sample rate, with the instrument's preset checked to exist in it."""

    def __init__(self, instrument: Instrument, sample_rate: int):
        from pixelsep_plugin.swap.midi import _tinysoundfont

        check_instrument(instrument)
        if sample_rate <= 0:
            raise InputError(f"sample_rate must be positive, not {sample_rate}")
        tinysoundfont = _tinysoundfont()
        path = soundfont_file(instrument)
        self.instrument, self.sample_rate = instrument, int(sample_rate)
        self.synth = tinysoundfont.Synth(samplerate=self.sample_rate)
        try:
            self.sfid = self.synth.sfload(str(path))
        except Exception as error:  # TinySoundFont's own exception types for unreadable files
            raise InputError(f"cannot load the SoundFont {path.name} ({error})") from None
        if self.synth.sfpreset_name(self.sfid, instrument.bank, instrument.program) is None:
            raise InputError(
                f"{path.name} has no preset at bank {instrument.bank} program {instrument.program}: "
                "choose another --to or --bank"
            )
        self.play([])

    def play(self, events: list[MidiEvent]) -> None:
        """Start playing ``events`` (by time) from sample 0; :meth:`generate` then hands out the sound."""
        synth = self.synth
        synth.notes_off()
        synth.sounds_off()
        drums = self.instrument.bank == DRUM_BANK
        for channel in range(16):
            synth.program_select(channel, self.sfid, self.instrument.bank, self.instrument.program, drums)
            synth.pitchbend_range(channel, 2.0)
            synth.pitchbend(channel, 8192)
        self.events = events
        self.next_event = 0
        self.position = 0  # samples handed out since play()
        self.rendered = 0  # samples the synthesizer made since play()
        self.held = np.zeros((0, 2), dtype=np.float32)  # made, not yet handed out

    def _apply(self, event: MidiEvent) -> None:
        if event.kind == "on":
            self.synth.noteon(event.channel, event.number, event.value)
        elif event.kind == "off":
            self.synth.noteoff(event.channel, event.number)
        elif event.kind == "bend":
            self.synth.pitchbend(event.channel, event.value)
        elif event.kind == "control":
            self.synth.control_change(event.channel, event.number, event.value)

    def _segment(self) -> np.ndarray:
        """The synthesizer's next stretch, float32 (n, 2): from the current sample to the next event or
        the next multiple of RENDER_CHUNK_SAMPLES, whichever comes first, after applying the events due."""
        while self.next_event < len(self.events):
            when = int(round(self.events[self.next_event].seconds * self.sample_rate))
            if when > self.rendered:
                break
            self._apply(self.events[self.next_event])
            self.next_event += 1
        upto = (self.rendered // RENDER_CHUNK_SAMPLES + 1) * RENDER_CHUNK_SAMPLES
        if self.next_event < len(self.events):
            upto = min(upto, int(round(self.events[self.next_event].seconds * self.sample_rate)))
        chunk = self.synth.generate(upto - self.rendered)
        self.rendered = upto
        return np.frombuffer(chunk, dtype=np.float32).reshape(-1, 2)

    def generate(self, num_samples: int) -> np.ndarray:
        """The next ``num_samples`` of the sound, float32 (2, num_samples). The synthesizer always runs
        in the same stretches (split at events and on a fixed grid), so the sound is the same sample
        for sample whatever the block sizes asked for."""
        out = np.empty((num_samples, 2), dtype=np.float32)
        filled = 0
        while filled < num_samples:
            if not self.held.shape[0]:
                self.held = self._segment()
            take = min(num_samples - filled, self.held.shape[0])
            out[filled : filled + take] = self.held[:take]
            self.held = self.held[take:]
            filled += take
        self.position += num_samples
        return np.ascontiguousarray(out.T)

    def render(self, events: list[MidiEvent], num_samples: int) -> np.ndarray:
        """float32 (2, num_samples): the events played from sample 0; events past the end are not played."""
        self.play(events)
        return self.generate(num_samples)


def render_events(events: list[MidiEvent], instrument: Instrument, sample_rate: int, num_samples: int) -> np.ndarray:
    """The events played by ``instrument``: float32 (2, num_samples) at ``sample_rate`` Hz, dry."""
    return SoundFontPlayer(instrument, sample_rate).render(events, num_samples)


def channel_gains_db(stem: np.ndarray) -> list[float]:
    """Where the stem sits: each channel's level in dB relative to the channels' mean power, float (channels, n) in.

    A silent stem (or a silent channel) gives 0 dB (respectively -60 dB for that channel)."""
    stem = np.asarray(stem, dtype=np.float64)
    power = np.mean(stem**2, axis=-1) if stem.shape[-1] else np.zeros(stem.shape[0])
    mean = float(np.mean(power))
    if mean <= 0.0:
        return [0.0] * stem.shape[0]
    return [round(max(-60.0, 10 * math.log10(max(p / mean, 1e-6))), 2) for p in power]


def place(rendered: np.ndarray, num_channels: int, gains_db: list[float] | None = None) -> np.ndarray:
    """A stereo rendering (2, n) as ``num_channels`` channels.

    With ``gains_db`` (one per channel): the rendering's mono mix at each channel's gain, so the new
    instrument sits where the stem did. Without: mono is the mean of left and right, stereo stays, and
    more channels get left and right in the first two (the rest silent)."""
    rendered = np.asarray(rendered, dtype=np.float32)
    if gains_db is not None:
        if len(gains_db) != num_channels:
            raise InputError(f"channel gains are given for {len(gains_db)} channels, the stem has {num_channels}")
        mono = rendered.mean(axis=0)
        return np.stack([mono * np.float32(10 ** (g / 20)) for g in gains_db]).astype(np.float32)
    if num_channels == 1:
        return rendered.mean(axis=0, keepdims=True)
    out = np.zeros((num_channels, rendered.shape[1]), dtype=np.float32)
    out[:2] = rendered
    return out


def match_gain_db(stem: np.ndarray, rendered: np.ndarray, sample_rate: int) -> float | None:
    """The gain in dB that gives ``rendered`` the stem's integrated loudness (both float (channels, n)),
    within +-40 dB; None when either is silent (below the -70 LUFS gate)."""
    target = integrated_loudness(stem, sample_rate)
    current = integrated_loudness(rendered, sample_rate)
    if not (math.isfinite(target) and math.isfinite(current)):
        return None
    return round(float(np.clip(target - current, -MAX_GAIN_DB, MAX_GAIN_DB)), 2)
