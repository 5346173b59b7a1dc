"""Where a performer's sound comes from: sound families, each a SoundFont, a drum kit, a set of
real recorded notes played by a small sampler, or real recorded phrases.

| family | what | Debian package | used for |
| --- | --- | --- | --- |
| ``fluidr3`` | FluidR3 General MIDI SoundFont | ``fluid-soundfont-gm`` | training |
| ``musescore`` | MuseScore General SoundFont (sf3) | ``musescore-general-soundfont`` | training |
| ``opl3`` | OPL3 FM-synthesis SoundFont | ``opl3-soundfont`` | training |
| ``avldrums`` | two real acoustic drum kits (drum only) | ``avldrums.lv2-soundfont`` | training |
| ``lmms`` | real recorded notes and hits (cello, violin, trumpet, flute, piano, steel guitar, slap bass, drums, shakers), pitched by a sampler | ``lmms-common`` | training |
| ``timgm6mb`` | TimGM6mb General MIDI SoundFont | ``timgm6mb-soundfont`` | held out: the held-out sound family |
| ``sonic-pi`` | real recorded phrases and loops (guitar, drum kit, tabla, piano), looped | ``sonic-pi-samples`` | held out: the real-recording test |

TimGM6mb shares its samples with csound's and scamp's General MIDI banks: none of them is used in
training. A family that cannot play an instrument is never drawn for it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from pixelsep_plugin.synth.instruments import Instrument

SAMPLE_RATE = 44100
SOUNDFONTS = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "musescore": "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "opl3": "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
}
DRUM_KITS = ("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2", "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2")
LMMS = "/usr/share/lmms/samples"
SONIC_PI = "/usr/share/sonic-pi/samples"
PACKAGES = {
    "fluidr3": "fluid-soundfont-gm", "musescore": "musescore-general-soundfont", "opl3": "opl3-soundfont",
    "timgm6mb": "timgm6mb-soundfont", "avldrums": "avldrums.lv2-soundfont", "lmms": "lmms-common",
    "sonic-pi": "sonic-pi-samples",
}  # fmt: skip

# lmms-common's real recordings: pitched notes (played by the sampler) and hits per drum note.
LMMS_NOTES = {
    "cello": ("instruments/cello01.ogg",),
    "violin": ("instruments/violin_fingered01.ogg",),
    "trumpet": ("instruments/trumpet01.ogg",),
    "flute": ("instruments/flute01.ogg",),
    "piano": ("instruments/piano01.ogg", "instruments/piano02.ogg"),
    "acoustic guitar": ("instruments/steel_guitar01.ogg",),
    "electric bass": ("instruments/bassslap02.ogg",),
}
LMMS_HITS = {
    "drum": ("drums/snare_acoustic01.ogg", "drums/bassdrum_acoustic02.ogg", "drums/tom_hi01.ogg", "drums/tom_mid01.ogg",
             "drums/tom_low01.ogg", "drums/sidestick01.ogg", "drums/snare01.ogg", "drums/kick01.ogg"),
    "maracas": ("drums/shaker01.ogg", "drums/shaker02.ogg", "drums/shaker03.ogg"),
}  # fmt: skip
# sonic-pi's real phrases and loops, per instrument (held out).
SONIC_PI_PHRASES = {
    "acoustic guitar": ("guit_e_fifths.flac", "guit_em9.flac", "guit_e_slide.flac", "guit_harmonics.flac"),
    "drum": ("loop_amen_full.flac", "loop_breakbeat.flac", "loop_amen.flac"),
    "congas": ("loop_tabla.flac",),
    "piano": ("ambi_piano.flac",),
}

TRAINING_SOUNDS = ("fluidr3", "musescore", "opl3", "avldrums", "lmms")
HELD_OUT_SOUNDS = ("timgm6mb",)
REAL_RECORDINGS = ("sonic-pi",)
FAMILIES = TRAINING_SOUNDS + HELD_OUT_SOUNDS + REAL_RECORDINGS


def can_play(family: str, instrument: Instrument) -> bool:
    if family in SOUNDFONTS:
        return True
    if family == "avldrums":
        return instrument.name == "drum"
    if family == "lmms":
        return instrument.name in LMMS_NOTES or instrument.name in LMMS_HITS
    if family == "sonic-pi":
        return instrument.name in SONIC_PI_PHRASES
    raise ValueError(f"unknown sound family {family!r}; choose from {', '.join(FAMILIES)}")


def families_for(instrument: Instrument, families: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f for f in families if can_play(f, instrument))


def family_path(family: str) -> Path:
    if family in SOUNDFONTS:
        return Path(SOUNDFONTS[family])
    return Path({"avldrums": DRUM_KITS[0], "lmms": LMMS, "sonic-pi": SONIC_PI}[family])


def check_families(families: tuple[str, ...]) -> None:
    """Raise FileNotFoundError (one line) when a family's files are not installed."""
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown sound family {family!r}; choose from {', '.join(FAMILIES)}")
        if not family_path(family).exists():
            raise FileNotFoundError(f"sound family {family}: {family_path(family)} not found (on Debian: apt-get install {PACKAGES[family]})")


@lru_cache(maxsize=64)
def read_sample(path: str) -> np.ndarray:
    """A recording as stereo float32 (2, samples) at 44.1 kHz."""
    import soundfile

    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    audio = audio.T
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    audio = audio[:2]
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly

        audio = resample_poly(audio, SAMPLE_RATE, rate, axis=1).astype(np.float32)
    return np.ascontiguousarray(audio)


@lru_cache(maxsize=64)
def sample_pitch(path: str) -> float:
    """The MIDI pitch of a recorded note (autocorrelation over 93 ms after its attack)."""
    mono = read_sample(path).mean(axis=0).astype(np.float64)
    start = int(0.15 * mono.size) if mono.size > 8000 else 0
    segment = mono[start : start + 4096]
    segment = segment - segment.mean()
    ac = np.correlate(segment, segment, "full")[segment.size - 1 :]
    lo, hi = SAMPLE_RATE // 1200, SAMPLE_RATE // 40
    lag = lo + int(np.argmax(ac[lo:hi]))
    return float(69 + 12 * np.log2(SAMPLE_RATE / lag / 440.0))


def _fade(audio: np.ndarray, samples: int) -> np.ndarray:
    if audio.shape[-1] > samples > 0:
        audio[:, -samples:] *= np.linspace(1.0, 0.0, samples, dtype=np.float32)
    return audio


def _pitched(sample: np.ndarray, semitones: float) -> np.ndarray:
    """The sample played ``semitones`` higher (by resampling, like a simple sampler)."""
    ratio = 2.0 ** (semitones / 12.0)
    n = int(sample.shape[1] / ratio)
    positions = np.arange(n) * ratio
    return np.stack([np.interp(positions, np.arange(sample.shape[1]), ch) for ch in sample]).astype(np.float32)


def render_sampler(performance, duration: float, rng: np.random.Generator) -> np.ndarray:
    """lmms-common's recorded notes and hits played at the performance's events; stereo float32."""
    name = performance.instrument.name
    total = int(round(duration * SAMPLE_RATE))
    out = np.zeros((2, total), dtype=np.float32)
    if name in LMMS_HITS:
        files = [f"{LMMS}/{f}" for f in LMMS_HITS[name]]
        notes = sorted({e.pitch for e in performance.events})
        by_note = {note: files[i % len(files)] for i, note in enumerate(notes)}
        for event in performance.events:
            hit = read_sample(by_note[event.pitch]) * (event.velocity / 127.0)
            start = int(event.start * SAMPLE_RATE)
            end = min(total, start + hit.shape[1])
            if start < total:
                out[:, start:end] += hit[:, : end - start]
        return out
    files = [f"{LMMS}/{f}" for f in LMMS_NOTES[name]]
    path = files[int(rng.integers(len(files)))]
    sample, base = read_sample(path), sample_pitch(path)
    cache: dict[int, np.ndarray] = {}
    for event in performance.events:
        if event.pitch not in cache:
            cache[event.pitch] = _pitched(sample, event.pitch - base)
        note = cache[event.pitch]
        length = min(note.shape[1], int((event.length + 0.08) * SAMPLE_RATE))
        piece = _fade(note[:, :length].copy(), int(0.06 * SAMPLE_RATE)) * (event.velocity / 127.0) ** 1.5
        start = int(event.start * SAMPLE_RATE)
        end = min(total, start + length)
        if start < total:
            out[:, start:end] += piece[:, : end - start]
    return out


def render_phrases(instrument: Instrument, duration: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """sonic-pi's recorded phrases of the instrument, looped from a random place with short gaps;
    returns (stereo float32, the file names)."""
    total = int(round(duration * SAMPLE_RATE))
    out = np.zeros((2, total), dtype=np.float32)
    position = int(rng.uniform(0, 0.5) * SAMPLE_RATE)
    used = []
    files = SONIC_PI_PHRASES[instrument.name]
    while position < total:
        name = files[int(rng.integers(len(files)))]
        phrase = read_sample(f"{SONIC_PI}/{name}")
        start = int(rng.integers(0, max(1, phrase.shape[1] // 2))) if not used else 0
        piece = _fade(phrase[:, start:].copy(), int(0.02 * SAMPLE_RATE)) * float(rng.uniform(0.6, 1.0))
        end = min(total, position + piece.shape[1])
        out[:, position:end] += piece[:, : end - position]
        used.append(name)
        position = end + int(rng.uniform(0.0, 0.6) * SAMPLE_RATE)
    return out, ",".join(sorted(set(used)))
