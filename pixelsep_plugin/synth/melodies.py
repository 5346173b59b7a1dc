"""Melodies for the synthetic performances: real ones from music21's bundled corpus, and generated phrases.

A :class:`Melody` is a list of notes (MIDI pitch, onset and length in beats). Corpus melodies are
the parts of Bach chorales (soprano, alto, tenor, bass) and tunes from O'Neill's 1850 collection;
reading them with music21 takes about a minute, so the extracted notes are cached as JSON.

Every melody has a stable id and falls in one split (``train``, ``val`` or ``test``) by a hash of
its *work* (all parts of one chorale share a split), so train and test never share a melody.
Generated phrases are split the same way by their seed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
CORPUS_CACHE_VERSION = 1
BACH_WORKS = 220  # chorales read from the corpus (of ~410)
ONEILL_FILES = 3  # 50 tunes each


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI note number
    onset: float  # beats
    length: float  # beats


@dataclass(frozen=True)
class Melody:
    id: str
    work: str
    notes: tuple[Note, ...]

    @property
    def beats(self) -> float:
        return max((n.onset + n.length for n in self.notes), default=0.0)


def split_of(work: str) -> str:
    """The split a work belongs to: 80% train, 10% val, 10% test, by a stable hash of its name."""
    bucket = int(hashlib.sha256(work.encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def _cache_path() -> Path:
    from pixelsep_plugin.runtime.analysis import default_cache_root

    return default_cache_root() / f"melodies-v{CORPUS_CACHE_VERSION}.json"


def _notes_of(part) -> list[tuple[int, float, float]]:
    notes = []
    for element in part.flatten().notes:
        pitches = getattr(element, "pitches", ())
        if not pitches or element.quarterLength <= 0:
            continue
        pitch = max(p.midi for p in pitches)  # a chord: its top note
        notes.append((int(pitch), float(element.offset), float(element.quarterLength)))
    return notes


def _extract_corpus(bach_works: int = BACH_WORKS, oneill_files: int = ONEILL_FILES) -> list[dict]:
    from music21 import corpus  # imported here: only the generator needs music21

    found: list[dict] = []
    bach = sorted(p for p in corpus.getComposer("bach") if p.name.startswith("bwv") and p.suffix == ".mxl")
    for path in bach[:bach_works]:
        try:
            score = corpus.parse(path)
        except Exception:  # a file music21 cannot read is skipped, not fatal
            continue
        work = f"bach/{path.stem}"
        for index, part in enumerate(score.parts):
            notes = _notes_of(part)
            if len(notes) >= 16:
                found.append({"id": f"{work}/part{index}", "work": work, "notes": notes})
    for path in sorted(corpus.getComposer("oneills1850"))[:oneill_files]:
        try:
            opus = corpus.parse(path)
        except Exception:
            continue
        for index, score in enumerate(getattr(opus, "scores", [opus])):
            work = f"oneills1850/{path.stem}/{index}"
            notes = _notes_of(score)
            if len(notes) >= 16:
                found.append({"id": work, "work": work, "notes": notes})
    return found


def corpus_melodies() -> list[Melody]:
    """Every corpus melody (cached after the first call in ``~/.cache/pixelsep``)."""
    path = _cache_path()
    data = None
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            if data.get("version") != CORPUS_CACHE_VERSION:
                data = None
        except (OSError, ValueError):
            data = None
    if data is None:
        data = {"version": CORPUS_CACHE_VERSION, "melodies": _extract_corpus()}
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".tmp{os.getpid()}")
        temp.write_text(json.dumps(data))
        os.replace(temp, path)
    return [
        Melody(m["id"], m["work"], tuple(Note(int(p), float(o), float(d)) for p, o, d in m["notes"]))
        for m in data["melodies"]
    ]


def melodies_for_split(split: str) -> list[Melody]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    return [m for m in corpus_melodies() if split_of(m.work) == split]


SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "blues": (0, 3, 5, 6, 7, 10),
}
RHYTHMS = (
    (1.0, 1.0, 1.0, 1.0),
    (0.5, 0.5, 1.0, 0.5, 0.5, 1.0),
    (1.5, 0.5, 1.0, 1.0),
    (0.25, 0.25, 0.5, 1.0, 2.0),
    (2.0, 1.0, 1.0),
    (0.5, 0.5, 0.5, 0.5, 2.0),
    (0.75, 0.25, 0.75, 0.25, 2.0),
)


def generated_melody(seed: int) -> Melody:
    """A phrase of 16-40 notes: a random walk in a scale with stock rhythms (seeded)."""
    rng = np.random.default_rng([seed, 7])
    scale = SCALES[list(SCALES)[rng.integers(len(SCALES))]]
    root = int(rng.integers(55, 67))
    degree = int(rng.integers(0, len(scale)))
    notes = []
    beat = 0.0
    count = int(rng.integers(16, 41))
    while len(notes) < count:
        for length in RHYTHMS[rng.integers(len(RHYTHMS))]:
            step = int(rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3, 4, -4]))
            degree = int(np.clip(degree + step, -len(scale), 2 * len(scale)))
            octave, index = divmod(degree, len(scale))
            notes.append(Note(root + 12 * octave + scale[index], beat, float(length)))
            beat += float(length)
    work = f"generated/{seed}"
    return Melody(work, work, tuple(notes))


def generated_seeds_for_split(split: str, start: int, count: int) -> list[int]:
    """``count`` seeds from ``start`` upward whose generated melody falls in ``split``."""
    seeds, seed = [], start
    while len(seeds) < count:
        if split_of(f"generated/{seed}") == split:
            seeds.append(seed)
        seed += 1
    return seeds


def fit_range(pitches: np.ndarray, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """Transpose by whole octaves (plus a random shift of up to a fifth) into ``low..high``, then fold strays."""
    centre = (low + high) / 2 + rng.integers(-5, 6)
    shift = int(round((centre - np.median(pitches)) / 12.0)) * 12 + int(rng.integers(-5, 6))
    out = pitches + shift
    while np.any(out < low):
        out = np.where(out < low, out + 12, out)
    while np.any(out > high):
        out = np.where(out > high, out - 12, out)
    return np.clip(out, low, high)
