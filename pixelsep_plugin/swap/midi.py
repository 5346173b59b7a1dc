"""Notes as Standard MIDI Files, and the General MIDI programs an instrument is chosen from.

:func:`write_midi` writes a format-0 file (one track, 480 ticks per quarter note at 120 bpm: 960
ticks per second, so times are kept to about a millisecond) with a track name, the tempo, the
program, and a note-on/note-off pair per note. :func:`read_midi` reads any Standard MIDI File
(format 0 or 1, tempo changes, running status: TinySoundFont's loader) into timed events in
seconds; :func:`notes_of` pairs them into notes. :func:`find_program` turns "27", "Electric Guitar
(clean)" or a unique part of a name ("clean guitar") into a General MIDI program number.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.swap.transcribe import Note

TICKS_PER_QUARTER = 480
TEMPO_MICROSECONDS = 500_000  # a quarter note at 120 bpm
TICKS_PER_SECOND = TICKS_PER_QUARTER * 1_000_000 // TEMPO_MICROSECONDS  # 960
MAX_MIDI_BYTES = 16 << 20
DRUM_BANK = 128  # SoundFont bank of the percussion kits

# General MIDI Level 1 program names, programs 0-127 (MIDI user interfaces often number them 1-128)
GM_PROGRAMS: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavi",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1", "Slap Bass 2",
    "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)  # fmt: skip
assert len(GM_PROGRAMS) == 128


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def find_program(text: str | int) -> int:
    """A General MIDI program number (0-127) from a number, a name or a unique part of one (any case).

    An exact name wins; otherwise the programs whose name contains every word given (as the start of
    one of its words) are the candidates. Raises InputError (one line) for none or several, listing them."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    query = str(text).strip()
    if re.fullmatch(r"[0-9]+", query):
        number = int(query)
        if number > 127:
            raise InputError(f"General MIDI programs are numbered 0-127, not {number}")
        return number
    words = _words(query)
    if not words:
        raise InputError("name an instrument: a General MIDI program number 0-127 or name, e.g. 'Trumpet'")
    exact = [i for i, name in enumerate(GM_PROGRAMS) if _words(name) == words]
    if exact:
        return exact[0]
    candidates = [
        i for i, name in enumerate(GM_PROGRAMS)
        if all(any(w.startswith(q) for w in _words(name)) for q in words)
    ]  # fmt: skip
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        listed = "; ".join(f"{i} {GM_PROGRAMS[i]}" for i in candidates)
        raise InputError(f"{query!r} fits {len(candidates)} General MIDI programs: give one of {listed}")
    import difflib

    near = difflib.get_close_matches(query.lower(), [n.lower() for n in GM_PROGRAMS], n=4, cutoff=0.5)
    names = [next(n for n in GM_PROGRAMS if n.lower() == m) for m in near]
    hint = (
        f"; did you mean {', '.join(names)}?"
        if names
        else "; e.g. 'Trumpet', 'Violin', 'Electric Guitar (clean)' or 56"
    )
    raise InputError(f"no General MIDI program is called {query!r}{hint}")


def program_name(program: int, bank: int = 0) -> str:
    """The General MIDI name of ``program`` (bank 0), else a description with the bank."""
    if bank == 0 and 0 <= program < 128:
        return GM_PROGRAMS[program]
    return f"bank {bank} program {program}"


# ---------------------------------------------------------------------------------------------------
# Writing


def _variable_length(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits per byte, most significant first, high bit = more follow."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _variable_length(len(data)) + data


def midi_bytes(notes: list[Note], program: int = 0, track_name: str = "", channel: int = 0) -> bytes:
    """A format-0 Standard MIDI File of ``notes`` played by ``program`` on ``channel`` (0-15).

    A note that starts while the same pitch still sounds ends the earlier one there (MIDI cannot hold
    one key twice)."""
    if not 0 <= program <= 127 or not 0 <= channel <= 15:
        raise InputError(f"program must be 0-127 and channel 0-15, not {program} and {channel}")
    ordered = sorted(notes, key=lambda n: (n.onset_seconds, n.pitch))
    spans: list[tuple[int, int, int, int]] = []  # (on tick, off tick, pitch, velocity)
    sounding: dict[int, int] = {}  # pitch -> index in spans
    for n in ordered:
        if not 0 <= n.pitch <= 127 or not 1 <= n.velocity <= 127:
            raise InputError(f"a note needs a pitch 0-127 and a velocity 1-127, not {n.pitch} and {n.velocity}")
        if n.onset_seconds < 0 or not n.offset_seconds > n.onset_seconds:
            raise InputError(f"a note must start at 0 s or later and end after it starts, not {n.as_tuple()}")
        on = int(round(n.onset_seconds * TICKS_PER_SECOND))
        off = max(on + 1, int(round(n.offset_seconds * TICKS_PER_SECOND)))
        previous = sounding.get(n.pitch)
        if previous is not None and spans[previous][1] > on:
            p_on, _, p_pitch, p_velocity = spans[previous]
            spans[previous] = (p_on, max(p_on + 1, on), p_pitch, p_velocity)
        sounding[n.pitch] = len(spans)
        spans.append((on, off, n.pitch, n.velocity))
    # at one tick, note-offs go before note-ons so that a repeated note is struck again
    events = sorted(
        [(off, 0, pitch, 0) for _, off, pitch, _ in spans] + [(on, 1, pitch, vel) for on, _, pitch, vel in spans]
    )
    track = bytearray()
    if track_name:
        track += _variable_length(0) + _meta(0x03, track_name.encode("utf-8")[:127])
    track += _variable_length(0) + _meta(0x51, TEMPO_MICROSECONDS.to_bytes(3, "big"))
    track += _variable_length(0) + bytes([0xC0 | channel, program])
    now = 0
    for tick, is_on, pitch, velocity in events:
        track += _variable_length(tick - now)
        track += bytes([(0x90 if is_on else 0x80) | channel, pitch, velocity if is_on else 64])
        now = tick
    track += _variable_length(0) + _meta(0x2F, b"")
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(
    path: Path | str, notes: list[Note], program: int = 0, track_name: str = "", protect: tuple[Path, ...] = ()
) -> Path:
    """Write ``notes`` as a Standard MIDI File (see :func:`midi_bytes`) atomically; returns the path."""
    from pixelsep_plugin.media.encode import atomic_destination

    path = Path(path)
    if path.suffix.lower() not in (".mid", ".midi"):
        raise InputError(f"a MIDI file ends in .mid, not {path.name}")
    data = midi_bytes(notes, program, track_name)
    with atomic_destination(path, protect=protect) as temp:
        temp.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class MidiEvent:
    """One channel event of a MIDI file at ``seconds``: kind "on" (value = velocity; velocity 0 is
    "off"), "off", "bend" (value 0-16383, 8192 = none) or "control" (number, value)."""

    seconds: float
    kind: str
    channel: int
    number: int = 0
    value: int = 0


def _tinysoundfont():
    try:
        import tinysoundfont
    except ImportError:
        raise InputError(
            'the instrument swap needs tinysoundfont: pip install --no-deps "tinysoundfont==0.3.7"'
        ) from None
    return tinysoundfont


def read_midi(path: Path | str) -> list[MidiEvent]:
    """The note, pitch-bend and controller events of a Standard MIDI File, by time; program changes
    are left out (the swap's instrument plays every channel). Raises InputError (one line)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MIDI_BYTES:
            raise InputError(f"{path.name} is larger than {MAX_MIDI_BYTES >> 20} MiB: is it a MIDI file?")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"MIDI file {path} not found: run `pixelsep swap` again to write it") from None
    except IsADirectoryError:
        raise InputError(f"MIDI file {path} is a folder") from None
    except OSError as error:
        raise InputError(f"cannot read MIDI file {path.name} ({error.strerror})") from None
    if not data.startswith(b"MThd"):
        raise InputError(f"{path.name} is not a Standard MIDI File (it does not start with MThd)")
    midi = _tinysoundfont().midi
    try:
        loaded = midi.load_memory(data)
    except Exception as error:  # the loader raises its own exception types for damaged files
        raise InputError(f"cannot read MIDI file {path.name} ({error})") from None
    events = []
    for event in loaded:
        action, seconds, channel = event.action, float(event.t), int(event.channel)
        if isinstance(action, midi.NoteOn):
            kind = "on" if action.velocity > 0 else "off"
            events.append(MidiEvent(seconds, kind, channel, int(action.key), int(action.velocity)))
        elif isinstance(action, midi.NoteOff):
            events.append(MidiEvent(seconds, "off", channel, int(action.key)))
        elif isinstance(action, midi.PitchBend):
            events.append(MidiEvent(seconds, "bend", channel, 0, int(action.pitch_bend)))
        elif isinstance(action, midi.ControlChange):
            events.append(MidiEvent(seconds, "control", channel, int(action.control), int(action.control_value)))
    order = {"off": 0, "control": 1, "bend": 1, "on": 2}
    events.sort(key=lambda e: (e.seconds, order[e.kind]))
    return events


def notes_of(events: list[MidiEvent]) -> list[Note]:
    """Notes from note-on/note-off pairs (per channel and key), sorted by onset then pitch; a key still
    down at the end ends at the last event."""
    down: dict[tuple[int, int], tuple[float, int]] = {}
    notes = []
    end = max((e.seconds for e in events), default=0.0)
    for event in events:
        key = (event.channel, event.number)
        if event.kind in ("on", "off") and key in down:
            onset, velocity = down.pop(key)
            if event.seconds > onset:
                notes.append(Note(onset, event.seconds, event.number, velocity))
        if event.kind == "on":
            down[key] = (event.seconds, event.value)
    for (_, pitch), (onset, velocity) in down.items():
        if end > onset:
            notes.append(Note(onset, end, pitch, velocity))
    return sorted(notes, key=lambda n: (n.onset_seconds, n.pitch))
