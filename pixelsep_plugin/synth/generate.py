"""Synthetic performances as ordinary files: solo clips for training, duets and trios for evaluation.

For a clip ``NAME`` the generator writes into its folder:

- ``NAME.mp4``: H.264 (yuv420p) + AAC stereo at 44.1 kHz, the mix of every performer;
- ``NAME.<performer>.flac``: each performer's own stem (stereo, 24-bit FLAC, exactly the signal
  mixed into the clip before AAC), named by the instrument;
- ``NAME.json``: the sidecar: seed, split, size, frame rate, and per performer its instrument,
  picture style, sound source, melody, tempo, its notes (``note_events``: onset and note-off in
  seconds, MIDI pitch, velocity), room and recording settings, stem file, and for every frame its
  bounding box ``[x0, y0, x1, y1]`` and a point on its picture ``[x, y]`` (the opaque pixel nearest
  the box's centre: where a user would click it).

Clips are deterministic by (kind, split, seed). Melodies of one split are never used in another
(see :mod:`.melodies`), and the seeds of a split's clips are their own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pixelsep_plugin import media
from pixelsep_plugin.synth import audio as synth_audio
from pixelsep_plugin.synth import pictures, sounds
from pixelsep_plugin.synth.instruments import VOCABULARY, Instrument
from pixelsep_plugin.synth.melodies import (
    generated_melody,
    generated_seeds_for_split,
    melodies_for_split,
)
from pixelsep_plugin.synth.video import Background, PerformerDrawing, place_performers

SIDECAR_FORMAT = "pixelsep-synth"
SIDECAR_VERSION = 1
KINDS = {"solo": 1, "duet": 2, "trio": 3}
SAMPLE_RATE = 44100
SPLIT_SEED_BASE = {"train": 0, "val": 1_000_000, "test": 2_000_000}


@dataclass(frozen=True)
class SynthSettings:
    width: int = 320
    height: int = 240
    fps: int = 24
    seconds: float = 12.0
    # picture styles (pictures.STYLES) and sound families (sounds.FAMILIES) drawn per performer
    styles: tuple[str, ...] = ("noto",)
    sounds: tuple[str, ...] = ("fluidr3",)
    recording: float = 0.0  # how often the recording chain (mic colour, band limits, hum, hiss, MP3) is applied: 0 never, 1 the full rate
    generated_share: float = 0.3  # share of pitched parts playing a generated phrase instead of a corpus melody
    crf: int | None = 23  # None: drawn per clip from 18-33


# What the training world and the held-out conditions draw from.
CONDITIONS: dict[str, dict] = {
    "train": {"styles": pictures.TRAINING_STYLES, "sounds": sounds.TRAINING_SOUNDS, "recording": 1.0, "crf": None},
    "classic": {"styles": ("noto",), "sounds": ("fluidr3",), "recording": 0.0, "crf": 23},
    "heldout-style": {"styles": pictures.HELD_OUT_STYLES, "sounds": ("fluidr3", "musescore"), "recording": 0.0, "crf": 23},
    "heldout-sound": {"styles": ("noto", "twemoji", "fluent"), "sounds": sounds.HELD_OUT_SOUNDS, "recording": 0.0, "crf": 23},
    "real": {"styles": ("noto", "twemoji", "fluent"), "sounds": sounds.REAL_RECORDINGS, "recording": 0.0, "crf": 23},
}


def playable(instrument: Instrument, settings: SynthSettings) -> bool:
    """Whether some style of ``settings`` draws the instrument and some family plays it."""
    return bool(pictures.styles_for(instrument.name, settings.styles)) and bool(sounds.families_for(instrument, settings.sounds))


_renderers: dict[tuple[str, int], synth_audio.SoundFontRenderer] = {}


def _renderer(soundfont: str) -> synth_audio.SoundFontRenderer:
    key = (soundfont, SAMPLE_RATE)
    if key not in _renderers:
        _renderers[key] = synth_audio.SoundFontRenderer(soundfont, SAMPLE_RATE)
    return _renderers[key]


def render_sound(performance: synth_audio.Performance, family: str, duration: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The performance played by ``family``; returns (dry stereo float32, the source's name)."""
    if family in sounds.SOUNDFONTS:
        path = sounds.SOUNDFONTS[family]
        return _renderer(path).render(performance, duration), Path(path).name
    if family == "avldrums":
        path = sounds.DRUM_KITS[int(rng.integers(len(sounds.DRUM_KITS)))]
        return _renderer(path).render(performance, duration, drum_kit=True), Path(path).name
    if family == "lmms":
        return sounds.render_sampler(performance, duration, rng), "lmms-common"
    raise ValueError(f"the sound family {family!r} plays no notes")


def choose_instruments(
    count: int, rng: np.random.Generator, instruments: Sequence[Instrument], first: Instrument | None = None
) -> list[Instrument]:
    """``count`` different instruments (``first`` among them when given)."""
    pool = [i for i in instruments if i is not first]
    picked = [pool[j] for j in rng.permutation(len(pool))[: count - (first is not None)]]
    return ([first] if first is not None else []) + picked


def _check_kind(kind: str, instruments: Sequence[Instrument]) -> int:
    """The number of performers of ``kind``; ValueError for an unknown kind or too few instruments."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if KINDS[kind] > len(instruments):
        raise ValueError(f"a {kind} needs {KINDS[kind]} different instruments, only {len(instruments)} can be drawn and played")
    return KINDS[kind]


def make_clip(
    out_dir: Path,
    name: str,
    kind: str,
    split: str,
    seed: int,
    settings: SynthSettings = SynthSettings(),
    instruments: Sequence[Instrument] = VOCABULARY,
    first: Instrument | None = None,
) -> Path:
    """Write one clip (see the module docstring); returns the sidecar's path."""
    instruments = [i for i in instruments if playable(i, settings)]
    count = _check_kind(kind, instruments)
    rng = np.random.default_rng([seed, count, SPLIT_SEED_BASE[split] // 1_000_000])
    s = settings
    duration = s.seconds
    num_frames = int(round(duration * s.fps))
    num_samples = int(round(duration * SAMPLE_RATE))
    chosen = choose_instruments(count, rng, instruments, first)
    stems, performances, rooms, sources, recordings = [], [], [], [], []
    for index, instrument in enumerate(chosen):
        family = str(rng.choice(sounds.families_for(instrument, s.sounds)))
        if family == "sonic-pi":
            dry, source = sounds.render_phrases(instrument, duration, rng)
            performance = synth_audio.Performance(instrument, source, 0.0, [], {"recorded": True})
        else:
            if instrument.percussion:
                performance = synth_audio.plan_rhythm(instrument, f"rhythm/{split}/{seed}/{index}", duration, rng)
            elif rng.random() < s.generated_share:
                phrase_seed = generated_seeds_for_split(split, int(rng.integers(0, 10**6)), 1)[0]
                performance = synth_audio.plan_melody(instrument, generated_melody(phrase_seed), duration, rng)
            else:
                melodies = melodies_for_split(split)
                melody = melodies[int(rng.integers(len(melodies)))]
                performance = synth_audio.plan_melody(instrument, melody, duration, rng)
            dry, source = render_sound(performance, family, duration, rng)
        wet, room = synth_audio.room(dry, SAMPLE_RATE, rng)
        recording: dict = {}
        if s.recording > 0:
            wet, recording = synth_audio.recording_chain(wet[:, :num_samples], SAMPLE_RATE, rng, s.recording)
        level = -20.0 + float(rng.uniform(-6, 6)) - (3.0 if count > 1 else 0.0)
        wet = synth_audio.set_level(wet[:, :num_samples], level)
        if count > 1:  # place the performer's sound where its picture is: left slot to the left
            pan = (index + 0.5) / count * 2 - 1  # -1 (left) .. 1 (right)
            wet = (wet * np.array([[1 - 0.35 * pan], [1 + 0.35 * pan]])).astype(np.float32)
        stems.append(wet)
        performances.append(performance)
        rooms.append(room)
        sources.append({"family": family, "source": source})
        recordings.append(recording)
    mix = np.sum(stems, axis=0)
    peak = float(np.abs(mix).max()) if mix.size else 0.0
    if peak > 0.89:  # headroom for AAC: scale every stem alike
        stems = [(stem * (0.89 / peak)).astype(np.float32) for stem in stems]
        mix = np.sum(stems, axis=0)

    looks = []
    for instrument in chosen:
        style = str(rng.choice(pictures.styles_for(instrument.name, s.styles)))
        colour = pictures.random_colour(rng) if style in pictures.TINTED else (40, 40, 40)
        looks.append((style, colour))
    crf = s.crf if s.crf is not None else int(rng.integers(18, 34))
    placements = place_performers(count, s.width, s.height, rng)
    background = Background(s.width, s.height, num_frames, rng)
    drawings = [
        PerformerDrawing(
            pictures.picture(instrument.name, style, colour),
            placement,
            synth_audio.envelope(stem, SAMPLE_RATE, s.fps, num_frames),
            np.array([e.start for e in performance.events]),
            np.array([e.velocity for e in performance.events]),
            s.fps,
        )
        for instrument, (style, colour), placement, stem, performance in zip(chosen, looks, placements, stems, performances, strict=True)
    ]
    boxes: list[list[list[int]]] = [[] for _ in drawings]
    points: list[list[list[int]]] = [[] for _ in drawings]

    def frames():
        for index in range(num_frames):
            canvas = Image.fromarray(background.frame(index)).convert("RGBA")
            for drawing, track, clicks in zip(drawings, boxes, points, strict=True):
                box, point = drawing.draw(canvas, index)
                track.append(box)
                clicks.append(point)
            yield np.asarray(canvas.convert("RGB"))

    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{name}.mp4"
    media.write_clip(video, frames(), s.fps, s.width, s.height, mix, SAMPLE_RATE, "stereo", crf=crf)
    performers = []
    names = [i.name.replace(" ", "-") for i in chosen]
    for instrument, label, stem, performance, room, track, look, source, recording, clicks in zip(
        chosen, names, stems, performances, rooms, boxes, looks, sources, recordings, points, strict=True
    ):
        stem_file = f"{name}.{label}.flac"
        media.write_audio(out_dir / stem_file, stem, SAMPLE_RATE, channel_layout="stereo")
        performers.append(
            {
                "name": label,
                "instrument": instrument.name,
                "style": look[0],
                "program": instrument.program,
                "sound": source,
                "melody": performance.melody_id,
                "tempo_bpm": round(performance.tempo_bpm, 2),
                "notes": len(performance.events),
                # each note as played: [onset_seconds, offset_seconds (its note-off), MIDI pitch (percussion:
                # the General MIDI drum note), velocity]; empty for recorded phrases, whose notes are unknown
                "note_events": [
                    [round(e.start, 5), round(e.start + e.length, 5), e.pitch, e.velocity] for e in performance.events
                ],
                "performance": performance.settings,
                "room": room,
                "recording": recording,
                "stem": stem_file,
                "boxes": track,
                "points": clicks,
            }
        )
    sidecar = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "name": name,
        "kind": kind,
        "split": split,
        "seed": seed,
        "video": video.name,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "num_frames": num_frames,
        "sample_rate": SAMPLE_RATE,
        "channels": 2,
        "duration_seconds": duration,
        "background": background.name,
        "crf": crf,
        "performers": performers,
    }
    path = out_dir / f"{name}.json"
    temp = path.with_suffix(".json.tmp")
    temp.write_text(json.dumps(sidecar, indent=1))
    os.replace(temp, path)
    return path


def _job(args: tuple) -> str:
    out_dir, name, kind, split, seed, settings, instrument_names, first_name = args
    by_name = {i.name: i for i in VOCABULARY}
    instruments = [by_name[n] for n in instrument_names]
    first = by_name[first_name] if first_name else None
    return str(make_clip(Path(out_dir), name, kind, split, seed, settings, instruments, first))


def clip_names(kind: str, split: str, count: int, start: int = 0) -> list[tuple[str, int]]:
    """(name, seed) of the clips of a set: seeds are offset per split so no two splits share one."""
    base = SPLIT_SEED_BASE[split]
    return [(f"{kind}-{split}-{base + i:07d}", base + i) for i in range(start, start + count)]


def generate_set(
    out_dir: Path,
    kind: str,
    split: str,
    count: int,
    settings: SynthSettings = SynthSettings(),
    instruments: Sequence[Instrument] = VOCABULARY,
    workers: int = 1,
    start: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """``count`` clips of ``kind`` in ``split``; existing complete clips (sidecar present) are kept.

    Solo sets cycle through the instruments so that each gets the same share of footage.
    """
    pictures.check_styles(settings.styles)
    sounds.check_families(settings.sounds)
    instruments = [i for i in instruments if playable(i, settings)]
    _check_kind(kind, instruments)
    if settings.generated_share < 1.0:
        melodies_for_split(split)  # read the corpus once here, not in every worker
    jobs = []
    for n, (name, seed) in enumerate(clip_names(kind, split, count, start)):
        if (out_dir / f"{name}.json").is_file():
            continue
        first = instruments[(start + n) % len(instruments)].name if kind == "solo" else None
        jobs.append((str(out_dir), name, kind, split, seed, settings, [i.name for i in instruments], first))
    done = count - len(jobs)
    if progress:
        progress(done, count)
    paths = [out_dir / f"{name}.json" for name, _ in clip_names(kind, split, count, start)]
    if not jobs:
        return paths
    if workers <= 1:
        for job in jobs:
            _job(job)
            done += 1
            if progress:
                progress(done, count)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_job, jobs):
                done += 1
                if progress:
                    progress(done, count)
    return paths


def read_sidecar(path: Path | str) -> dict:
    """A clip's sidecar (checked for format); ValueError if it is not one."""
    path = Path(path)
    data = json.loads(path.read_text())
    if data.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path.name} is not a pixelsep synthetic clip sidecar")
    return data
