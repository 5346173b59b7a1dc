"""Rendering a performer's sound: note events from a melody or a rhythm, a SoundFont, a room.

A :class:`Performance` is what one performer plays in a clip: timed note events (seconds, MIDI
pitch, velocity, length). :func:`render` turns it into stereo float32 at the clip's rate with
tinysoundfont, then runs it through a pedalboard chain (reverb, EQ, sometimes compression) drawn
for that performer, so the model never learns one dry rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pixelsep_plugin.synth.instruments import Instrument
from pixelsep_plugin.synth.melodies import Melody, fit_range

RENDER_BLOCK = 512


@dataclass(frozen=True)
class NoteEvent:
    start: float  # seconds
    pitch: int
    velocity: int
    length: float  # seconds


@dataclass
class Performance:
    instrument: Instrument
    melody_id: str
    tempo_bpm: float
    events: list[NoteEvent]
    settings: dict = field(default_factory=dict)


def _rests(rng: np.random.Generator, duration: float) -> list[tuple[float, float]]:
    """A few silent stretches (start, length) in seconds, so a performer is not always playing."""
    count = int(rng.integers(0, 3))
    return sorted((float(rng.uniform(0.5, duration - 1.0)), float(rng.uniform(0.4, 2.0))) for _ in range(count))


def plan_melody(
    instrument: Instrument, melody: Melody, duration: float, rng: np.random.Generator
) -> Performance:
    """Notes of ``melody`` transposed into the instrument's range, from a random place, at a random
    tempo, articulation and dynamic shape, with rests, filling ``duration`` seconds (looping)."""
    tempo = float(rng.uniform(60, 150))
    beat = 60.0 / tempo
    articulation = str(rng.choice(["legato", "normal", "staccato"], p=[0.35, 0.45, 0.2]))
    hold = {"legato": 1.06, "normal": 0.85, "staccato": 0.45}[articulation]  # legato notes overlap a little
    timing = float(rng.uniform(0.0, 0.02))  # how unevenly this performer plays (seconds)
    pitches = fit_range(np.array([n.pitch for n in melody.notes]), instrument.low, instrument.high, rng)
    base = float(rng.uniform(50, 112))
    slope = float(rng.uniform(-30, 30))  # crescendo or diminuendo over the clip
    rests = _rests(rng, duration)
    events: list[NoteEvent] = []
    first = int(rng.integers(0, max(1, len(melody.notes) - 8)))
    t = float(rng.uniform(0.0, 0.8))
    offset_beats = melody.notes[first].onset
    index = first
    while t < duration:
        note = melody.notes[index]
        start = max(0.0, t + (note.onset - offset_beats) * beat + float(rng.normal(0, timing)))
        if start >= duration:
            break
        for rest_start, rest_length in rests:
            if rest_start <= start < rest_start + rest_length:
                break
        else:
            if rng.random() > 0.06:  # an occasional dropped note
                velocity = base + slope * start / duration + rng.normal(0, 8)
                events.append(
                    NoteEvent(start, int(pitches[index]), int(np.clip(velocity, 20, 127)), note.length * beat * hold)
                )
        index += 1
        if index == len(melody.notes):  # loop after a breath
            t = start + note.length * beat + float(rng.uniform(0.3, 1.2))
            offset_beats = melody.notes[0].onset
            index = 0
    settings = {"articulation": articulation, "base_velocity": round(base, 1), "velocity_slope": round(slope, 1),
                "timing_seconds": round(timing, 4)}  # fmt: skip
    if instrument.vibrato_cents:
        settings["vibrato_cents"] = round(instrument.vibrato_cents * float(rng.uniform(0.3, 1.4)), 1)
        settings["vibrato_hz"] = round(float(rng.uniform(4.5, 6.5)), 2)
    events.sort(key=lambda e: e.start)  # timing jitter may reorder close notes; glides index the sorted events
    if instrument.glide:
        settings["glides"] = [i for i in range(1, len(events)) if rng.random() < instrument.glide]
    return Performance(instrument, melody.id, tempo, events, settings)


def plan_rhythm(instrument: Instrument, seed_id: str, duration: float, rng: np.random.Generator) -> Performance:
    """A percussion part: a repeating 1-bar pattern of 8 or 16 steps with accents, fills and rests."""
    tempo = float(rng.uniform(70, 150))
    steps = int(rng.choice([8, 16]))
    step_seconds = 4 * 60.0 / tempo / steps
    notes = np.array(instrument.drum_notes)
    weights = np.linspace(2.0, 1.0, len(notes))
    weights /= weights.sum()
    pattern = []
    for step in range(steps):
        density = 0.85 if step % (steps // 4) == 0 else 0.45
        if rng.random() < density:
            pattern.append((step, int(rng.choice(notes, p=weights))))
    if not pattern:
        pattern.append((0, int(notes[0])))
    base = float(rng.uniform(55, 115))
    rests = _rests(rng, duration)
    events: list[NoteEvent] = []
    bar = 0
    t0 = float(rng.uniform(0.0, 0.8))
    while True:
        bar_start = t0 + bar * steps * step_seconds
        if bar_start >= duration:
            break
        fill = rng.random() < 0.2
        for step, note in pattern if not fill else [(s, int(rng.choice(notes))) for s in range(steps) if rng.random() < 0.7]:
            start = bar_start + step * step_seconds + rng.normal(0, 0.004)
            if not 0 <= start < duration or any(a <= start < a + b for a, b in rests):
                continue
            accent = 18 if step % (steps // 4) == 0 else 0
            velocity = int(np.clip(base + accent + rng.normal(0, 10), 20, 127))
            events.append(NoteEvent(float(start), note, velocity, 0.12))
        bar += 1
    return Performance(instrument, seed_id, tempo, events, {"steps": steps, "base_velocity": round(base, 1)})


class SoundFontRenderer:
    """One loaded SoundFont (loading FluidR3 takes a moment, so reuse a renderer)."""

    def __init__(self, soundfont: str, sample_rate: int = 44100) -> None:
        import tinysoundfont  # imported here: only the generator needs it

        self.sample_rate = sample_rate
        self.synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-3)
        try:
            self.sfid = self.synth.sfload(soundfont)
        except Exception as error:
            raise FileNotFoundError(
                f"cannot load the SoundFont {soundfont} ({error}); on Debian: apt-get install fluid-soundfont-gm"
            ) from None

    def render(self, performance: Performance, duration: float, drum_kit: bool = False) -> np.ndarray:
        """Stereo float32 (2, round(duration * rate)) of the performance's notes, dry.

        Sustained instruments get a vibrato that grows in on long notes and notes marked in
        ``performance.settings["glides"]`` slide in from the previous pitch (pitch bends).
        ``drum_kit``: the SoundFont is a drum kit whose first preset maps the General MIDI drum notes."""
        synth = self.synth
        instrument = performance.instrument
        chan = 9 if instrument.percussion and not drum_kit else 0
        synth.sounds_off()
        synth.generate(8192)  # let the quick release of anything still sounding run out, unheard
        if drum_kit:
            synth.program_select(chan, self.sfid, 0, 0)
        elif instrument.percussion:
            synth.program_select(chan, self.sfid, 128, 0, True)
        else:
            synth.program_select(chan, self.sfid, 0, instrument.program)
        synth.pitchbend_range(chan, 2.0)
        synth.pitchbend(chan, 8192)
        total = int(round(duration * self.sample_rate))
        out = np.zeros((total, 2), dtype=np.float32)
        actions = []
        glides = set(performance.settings.get("glides", ()))
        for index, event in enumerate(performance.events):
            actions.append((int(event.start * self.sample_rate), 1, event.pitch, event.velocity, index))
            actions.append((int((event.start + event.length) * self.sample_rate), 0, event.pitch, 0, index))
        actions.sort(key=lambda a: (a[0], a[1]))
        vibrato = float(performance.settings.get("vibrato_cents", 0.0))
        rate_hz = float(performance.settings.get("vibrato_hz", 5.5))
        bends = bool(vibrato) or bool(glides)
        step = 256 if bends else total  # pitch bends are updated every 5.8 ms
        note_start, glide_from, glide_seconds = 0.0, 0.0, 0.08
        position = 0

        def bend_at(sample: int) -> int:
            t = sample / self.sample_rate - note_start
            cents = glide_from * 100.0 * max(0.0, 1.0 - t / glide_seconds)
            if vibrato:
                cents += vibrato * min(1.0, max(0.0, (t - 0.15) / 0.4)) * np.sin(2 * np.pi * rate_hz * t)
            return int(np.clip(8192 + cents / 200.0 * 8192, 0, 16383))

        def advance(position: int, until: int) -> int:
            """Render samples [position, until), updating the pitch bend every ``step``; returns ``until``."""
            while position < until:
                upto = min(until, position + step)
                if bends:
                    synth.pitchbend(chan, bend_at(position))
                out[position:upto] = np.frombuffer(synth.generate(upto - position), dtype=np.float32).reshape(-1, 2)
                position = upto
            return position

        previous_pitch = None
        for when, on, pitch, velocity, index in actions:
            when = min(when, total)
            position = advance(position, when)
            if on:
                glide_from = float(previous_pitch - pitch) if index in glides and previous_pitch is not None else 0.0
                glide_from = float(np.clip(glide_from, -2.0, 2.0))  # the bend range
                note_start = when / self.sample_rate
                if bends:
                    synth.pitchbend(chan, bend_at(when))
                synth.noteon(chan, pitch, velocity)
                previous_pitch = pitch
            else:
                synth.noteoff(chan, pitch)
        advance(position, total)
        synth.notes_off()
        synth.pitchbend(chan, 8192)
        return np.ascontiguousarray(out.T)


def room(audio: np.ndarray, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The performer's room and EQ with pedalboard, drawn at random; returns (audio, its settings)."""
    import pedalboard  # imported here: only the generator needs it

    settings = {
        "reverb_room_size": round(float(rng.uniform(0.05, 0.9)), 3),
        "reverb_wet": round(float(rng.uniform(0.0, 0.35)), 3),
        "reverb_damping": round(float(rng.uniform(0.2, 0.8)), 3),
        "low_shelf_db": round(float(rng.uniform(-6, 6)), 2),
        "high_shelf_db": round(float(rng.uniform(-8, 4)), 2),
        "peak_hz": round(float(np.exp(rng.uniform(np.log(300), np.log(4000)))), 1),
        "peak_db": round(float(rng.uniform(-6, 6)), 2),
        "compressor": bool(rng.random() < 0.3),
    }
    chain = [
        pedalboard.LowShelfFilter(cutoff_frequency_hz=200, gain_db=settings["low_shelf_db"]),
        pedalboard.PeakFilter(cutoff_frequency_hz=settings["peak_hz"], gain_db=settings["peak_db"], q=1.0),
        pedalboard.HighShelfFilter(cutoff_frequency_hz=5000, gain_db=settings["high_shelf_db"]),
    ]
    if settings["compressor"]:
        chain.append(pedalboard.Compressor(threshold_db=-24, ratio=3))
    chain.append(
        pedalboard.Reverb(
            room_size=settings["reverb_room_size"],
            damping=settings["reverb_damping"],
            wet_level=settings["reverb_wet"],
            dry_level=1.0 - settings["reverb_wet"] / 2,
            width=float(rng.uniform(0.5, 1.0)),
        )
    )
    return pedalboard.Pedalboard(chain)(audio, sample_rate).astype(np.float32), settings


def recording_chain(audio: np.ndarray, sample_rate: int, rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, dict]:
    """How real recordings differ, drawn at random: microphone colour (resonances), a band limit,
    hum (50 or 60 Hz and harmonics), hiss, and sometimes a lossy codec (MP3). Each is applied with
    some chance (scaled by ``strength``); returns (audio, what was applied)."""
    import pedalboard

    settings: dict = {}
    chain = []
    if rng.random() < 0.6 * strength:
        for _ in range(int(rng.integers(1, 4))):
            hz = float(np.exp(rng.uniform(np.log(150), np.log(6000))))
            db = float(rng.uniform(-8, 8))
            chain.append(pedalboard.PeakFilter(cutoff_frequency_hz=hz, gain_db=db, q=float(rng.uniform(0.7, 4))))
            settings.setdefault("mic_peaks", []).append([round(hz, 1), round(db, 1)])
    if rng.random() < 0.3 * strength:
        settings["lowpass_hz"] = round(float(rng.uniform(3000, 9000)), 1)
        settings["highpass_hz"] = round(float(rng.uniform(60, 300)), 1)
        chain += [pedalboard.LowpassFilter(settings["lowpass_hz"]), pedalboard.HighpassFilter(settings["highpass_hz"])]
    if rng.random() < 0.15 * strength:
        settings["mp3_vbr_quality"] = round(float(rng.uniform(4, 9)), 1)
        chain.append(pedalboard.MP3Compressor(vbr_quality=settings["mp3_vbr_quality"]))
    out = pedalboard.Pedalboard(chain)(audio, sample_rate).astype(np.float32) if chain else audio
    out = out[:, : audio.shape[1]]
    if out.shape[1] < audio.shape[1]:
        out = np.pad(out, ((0, 0), (0, audio.shape[1] - out.shape[1])))
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2))) + 1e-9
    t = np.arange(audio.shape[1]) / sample_rate
    if rng.random() < 0.15 * strength:
        mains = float(rng.choice([50.0, 60.0]))
        level = rms * 10 ** (float(rng.uniform(-40, -22)) / 20)
        hum = sum(np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3, 5))
        out = out + (level * hum).astype(np.float32)[None]
        settings["hum_hz"] = mains
    if rng.random() < 0.25 * strength:
        level = rms * 10 ** (float(rng.uniform(-45, -25)) / 20)
        out = out + (level * rng.standard_normal(out.shape)).astype(np.float32)
        settings["hiss_db"] = round(20 * np.log10(level / rms), 1)
    return out.astype(np.float32), settings


def set_level(audio: np.ndarray, level_db: float) -> np.ndarray:
    """Scale so that the RMS over the sounding part is ``level_db`` dBFS (silence stays silence)."""
    power = np.mean(audio.astype(np.float64) ** 2, axis=0)
    active = power > 1e-8
    if not np.any(active):
        return audio
    rms = float(np.sqrt(power[active].mean()))
    return (audio * (10 ** (level_db / 20) / rms)).astype(np.float32)


def envelope(audio: np.ndarray, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """Loudness per video frame in [0, 1] (RMS over each frame's samples, relative to the clip's loudest)."""
    mono = audio.astype(np.float64).mean(axis=0)
    edges = np.minimum((np.arange(num_frames + 1) * sample_rate / fps).astype(int), mono.size)
    cumulative = np.concatenate([[0.0], np.cumsum(mono**2)])
    counts = np.diff(edges)
    rms = np.sqrt((cumulative[edges[1:]] - cumulative[edges[:-1]]) / np.maximum(counts, 1))
    peak = rms.max() if rms.size else 0.0
    return rms / peak if peak > 0 else rms
