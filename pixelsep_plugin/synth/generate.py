"""Synthetic performances as ordinary files: solo clips for training, duets and trios for evaluation.

For a clip ``NAME`` the generator writes into its folder:

- ``NAME.mp4``: H.264 (yuv420p) + AAC stereo at 44.1 kHz, the mix of every performer;
- ``NAME.<performer>.flac``: each performer's own stem (stereo, 24-bit FLAC, exactly the signal
  mixed into the clip before AAC), named by the instrument;
- ``NAME.json``: the sidecar: seed, split, size, frame rate, and per performer its instrument,
  melody, tempo, room settings, stem file and bounding box ``[x0, y0, x1, y1]`` for every frame.

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
from pixelsep_plugin.synth.instruments import DEFAULT_EMOJI_FONT, DEFAULT_SOUNDFONT, VOCABULARY, Instrument
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
    soundfont: str = DEFAULT_SOUNDFONT
    emoji_font: str = DEFAULT_EMOJI_FONT
    generated_share: float = 0.3  # share of pitched parts playing a generated phrase instead of a corpus melody
    crf: int = 23


_renderers: dict[tuple[str, int], synth_audio.SoundFontRenderer] = {}


def _renderer(soundfont: str) -> synth_audio.SoundFontRenderer:
    key = (soundfont, SAMPLE_RATE)
    if key not in _renderers:
        _renderers[key] = synth_audio.SoundFontRenderer(soundfont, SAMPLE_RATE)
    return _renderers[key]


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
        raise ValueError(f"a {kind} needs {KINDS[kind]} different instruments, only {len(instruments)} chosen")
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
    count = _check_kind(kind, instruments)
    rng = np.random.default_rng([seed, count, SPLIT_SEED_BASE[split] // 1_000_000])
    s = settings
    duration = s.seconds
    num_frames = int(round(duration * s.fps))
    num_samples = int(round(duration * SAMPLE_RATE))
    chosen = choose_instruments(count, rng, instruments, first)
    renderer = _renderer(s.soundfont)
    stems, performances, rooms = [], [], []
    for index, instrument in enumerate(chosen):
        if instrument.percussion:
            performance = synth_audio.plan_rhythm(instrument, f"rhythm/{split}/{seed}/{index}", duration, rng)
        elif rng.random() < s.generated_share:
            phrase_seed = generated_seeds_for_split(split, int(rng.integers(0, 10**6)), 1)[0]
            performance = synth_audio.plan_melody(instrument, generated_melody(phrase_seed), duration, rng)
        else:
            melodies = melodies_for_split(split)
            melody = melodies[int(rng.integers(len(melodies)))]
            performance = synth_audio.plan_melody(instrument, melody, duration, rng)
        dry = renderer.render(performance, duration)
        wet, room = synth_audio.room(dry, SAMPLE_RATE, rng)
        level = -20.0 + float(rng.uniform(-4, 4)) - (3.0 if count > 1 else 0.0)
        wet = synth_audio.set_level(wet[:, :num_samples], level)
        if count > 1:  # place the performer's sound where its picture is: left slot to the left
            pan = (index + 0.5) / count * 2 - 1  # -1 (left) .. 1 (right)
            wet = (wet * np.array([[1 - 0.35 * pan], [1 + 0.35 * pan]])).astype(np.float32)
        stems.append(wet)
        performances.append(performance)
        rooms.append(room)
    mix = np.sum(stems, axis=0)
    peak = float(np.abs(mix).max()) if mix.size else 0.0
    if peak > 0.89:  # headroom for AAC: scale every stem alike
        stems = [(stem * (0.89 / peak)).astype(np.float32) for stem in stems]
        mix = np.sum(stems, axis=0)

    placements = place_performers(count, s.width, s.height, rng)
    background = Background(s.width, s.height, num_frames, rng)
    drawings = [
        PerformerDrawing(
            instrument.emoji,
            placement,
            synth_audio.envelope(stem, SAMPLE_RATE, s.fps, num_frames),
            np.array([e.start for e in performance.events]),
            np.array([e.velocity for e in performance.events]),
            s.fps,
            s.emoji_font,
        )
        for instrument, placement, stem, performance in zip(chosen, placements, stems, performances, strict=True)
    ]
    boxes: list[list[list[int]]] = [[] for _ in drawings]

    def frames():
        for index in range(num_frames):
            canvas = Image.fromarray(background.frame(index)).convert("RGBA")
            for drawing, track in zip(drawings, boxes, strict=True):
                track.append(drawing.draw(canvas, index))
            yield np.asarray(canvas.convert("RGB"))

    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{name}.mp4"
    media.write_clip(video, frames(), s.fps, s.width, s.height, mix, SAMPLE_RATE, "stereo", crf=s.crf)
    performers = []
    names = [i.name.replace(" ", "-") for i in chosen]
    for instrument, label, stem, performance, room, track in zip(chosen, names, stems, performances, rooms, boxes, strict=True):
        stem_file = f"{name}.{label}.flac"
        media.write_audio(out_dir / stem_file, stem, SAMPLE_RATE, channel_layout="stereo")
        performers.append(
            {
                "name": label,
                "instrument": instrument.name,
                "emoji": f"U+{instrument.emoji:X}",
                "program": instrument.program,
                "melody": performance.melody_id,
                "tempo_bpm": round(performance.tempo_bpm, 2),
                "notes": len(performance.events),
                "performance": performance.settings,
                "room": room,
                "stem": stem_file,
                "boxes": track,
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
        "soundfont": Path(s.soundfont).name,
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
