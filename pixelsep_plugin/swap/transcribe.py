"""Audio to notes with the Basic Pitch network (Bittner et al., ICASSP 2022), run with ONNX Runtime.

The network is the ``nmp.onnx`` graph that the ``basic-pitch`` wheel ships (Apache-2.0); pixelsep
installs the wheel without its TensorFlow requirement (``pip install --no-deps basic-pitch==0.4.0``),
finds the file through the import system without running the package, checks its sha256 and never
downloads anything. Everything around the graph is pixelsep's own:

- **Input**: mono (the channel mean) at 22050 Hz, cut into windows of 43844 samples (2 s less one
  hop), which the graph maps onto 172 frames 256 samples apart (a frame every 11.6 ms). The first
  and last :data:`EDGE_FRAMES` frames of a window see the window's edge, so only the 142 frames in
  between are kept, and windows start 142 x 256 samples apart (after 15 x 256 samples of leading
  silence): the kept frames of successive windows tile the signal exactly, and global frame ``n``
  is at ``n * 256 / 22050`` seconds.
- **Outputs**, each (frames, pitches) in [0, 1]: *note* (a note of that pitch sounds), *onset* (one
  starts) over the 88 piano keys (MIDI 21-108), and *contour* (three bins per semitone, for pitch
  bends, unused here).
- **Notes** (:func:`notes_from_posteriorgrams`): onset candidates are the local maxima in time of
  the onset posteriorgram (strengthened by sudden rises of the note posteriorgram) above
  ``onset_threshold``. From the latest to the earliest, each runs on while the note posteriorgram
  stays above ``frame_threshold`` (gaps up to ``gap_frames`` are bridged) and takes that activation
  (and its neighbouring semitones) for itself, so a repeated note ends where the next one begins.
  Sustained activation left over without an onset can become notes too (``notes_without_onsets``,
  off by default: on separated stems it mostly finds the other performers' bleed). Notes shorter than ``minimum_note_seconds`` or outside the pitch range are dropped;
  velocity is 127 x the mean note activation.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from pixelsep_plugin.errors import InputError, ModelError

MODEL_SAMPLE_RATE = 22050  # Hz, mono
HOP_SAMPLES = 256  # samples per posteriorgram frame at MODEL_SAMPLE_RATE
WINDOW_SAMPLES = 43844  # the graph's input length: 2 s less one hop
FRAMES_PER_WINDOW = 172
EDGE_FRAMES = 15  # frames at each side of a window that see its edge: dropped
KEPT_FRAMES = FRAMES_PER_WINDOW - 2 * EDGE_FRAMES  # 142
WINDOW_STEP_SAMPLES = KEPT_FRAMES * HOP_SAMPLES  # 36352: kept frames of successive windows tile the signal
LOWEST_PITCH = 21  # MIDI note of the posteriorgrams' first row (A0)
NUM_PITCHES = 88
FRAME_SECONDS = HOP_SAMPLES / MODEL_SAMPLE_RATE

BASIC_PITCH_VERSION = "0.4.0"
MODEL_RELATIVE_PATH = ("saved_models", "icassp_2022", "nmp.onnx")
MODEL_SHA256 = "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec"
INSTALL_HINT = f'pip install --no-deps "basic-pitch=={BASIC_PITCH_VERSION}"'
# the graph's tensor names -> what they hold
INPUT_NAME = "serving_default_input_2:0"
OUTPUT_NAMES = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2",
                "contour": "StatefulPartitionedCall:0"}  # fmt: skip


@dataclass(frozen=True)
class Note:
    """One transcribed or written note: onset and offset in seconds, MIDI pitch (0-127), velocity (1-127)."""

    onset_seconds: float
    offset_seconds: float
    pitch: int
    velocity: int

    def as_tuple(self) -> tuple[float, float, int, int]:
        return (self.onset_seconds, self.offset_seconds, self.pitch, self.velocity)


@dataclass(frozen=True)
class TranscriptionSettings:
    """How posteriorgrams become notes.

    onset_threshold: the onset strength a note must start with (0-1). frame_threshold: the note
    activation that keeps a note sounding (0-1). minimum_note_seconds: shorter notes are dropped.
    lowest_pitch, highest_pitch: the MIDI range kept (the network hears 21-108). gap_frames: how many
    frames (11.6 ms each) below ``frame_threshold`` a note may bridge. infer_onsets: also start notes
    where the note activation rises sharply. notes_without_onsets: also turn sustained activation that
    no onset claimed into notes.

    The defaults are stricter than Basic Pitch's own (0.5, 0.3, notes without onsets): separated stems
    carry some of the other performers, whose faint notes those would let through. They were chosen
    on the validation split of synthetic solos and duets (``benchmarks/transcription.py --split val``)."""

    onset_threshold: float = 0.7
    frame_threshold: float = 0.5
    minimum_note_seconds: float = 0.12
    lowest_pitch: int = LOWEST_PITCH
    highest_pitch: int = LOWEST_PITCH + NUM_PITCHES - 1
    gap_frames: int = 11
    infer_onsets: bool = True
    notes_without_onsets: bool = False

    def check(self) -> TranscriptionSettings:
        """Raise InputError (one line) for a value out of range; returns self."""
        for name in ("onset_threshold", "frame_threshold"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise InputError(f"{name.replace('_', ' ')} must be between 0 and 1 (exclusive), not {value:g}")
        if not 0.0 <= self.minimum_note_seconds <= 10.0:
            raise InputError(f"minimum note length must be 0-10 s, not {self.minimum_note_seconds:g}")
        if not 0 <= self.lowest_pitch <= self.highest_pitch <= 127:
            raise InputError(f"pitch range {self.lowest_pitch}-{self.highest_pitch} must lie in 0-127, low first")
        if self.gap_frames < 0:
            raise InputError(f"gap_frames must be 0 or more, not {self.gap_frames}")
        return self


@dataclass
class Posteriorgrams:
    """The network's outputs over a whole signal, float32 (frames, pitches): frame n at n * FRAME_SECONDS.

    note, onset: (frames, 88), row p is MIDI pitch 21 + p. contour: (frames, 264), three bins per semitone."""

    note: np.ndarray
    onset: np.ndarray
    contour: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.note.shape[0]


def model_path() -> Path:
    """Where the installed ``basic-pitch`` wheel keeps ``nmp.onnx`` (found without importing the package).

    Raises ModelError (one line) when the wheel is missing or the file is not the expected graph."""
    spec = importlib.util.find_spec("basic_pitch")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder).joinpath(*MODEL_RELATIVE_PATH)
        if path.is_file():
            return path
    raise ModelError(f"transcription needs the Basic Pitch network from the basic-pitch wheel: {INSTALL_HINT}")


def _check_model(path: Path) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelError(
            f"{path} is not the Basic Pitch graph pixelsep knows (sha256 {digest[:12]}, expected {MODEL_SHA256[:12]}): "
            f"{INSTALL_HINT}"
        )
    return data


def to_model_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 (channels, n) or (n,) at ``sample_rate`` Hz -> float32 (m,) mono at 22050 Hz.

    Mono is the channel mean; resampling is polyphase (scipy), m = ceil(n * 22050 / sample_rate)."""
    from scipy.signal import resample_poly

    if sample_rate <= 0:
        raise InputError(f"sample_rate must be positive, not {sample_rate}")
    audio = np.asarray(audio, dtype=np.float32)
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if mono.ndim != 1:
        raise InputError(f"audio must be (channels, n) or (n,), got shape {audio.shape}")
    if sample_rate == MODEL_SAMPLE_RATE or mono.size == 0:
        return np.ascontiguousarray(mono)
    common = gcd(MODEL_SAMPLE_RATE, int(sample_rate))
    return resample_poly(mono, MODEL_SAMPLE_RATE // common, int(sample_rate) // common).astype(np.float32)


class Transcriber:
    """The Basic Pitch graph in an ONNX Runtime session; reuse it across stems.

    ``threads``: intra-op threads (None: ONNX Runtime's default). ``batch_windows``: windows per
    network call (memory stays bounded whatever the signal's length)."""

    def __init__(self, threads: int | None = None, batch_windows: int = 8):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(_check_model(model_path()), options, providers=["CPUExecutionProvider"])
        names = {o.name for o in self.session.get_outputs()}
        if self.session.get_inputs()[0].name != INPUT_NAME or not set(OUTPUT_NAMES.values()) <= names:
            raise ModelError("the Basic Pitch graph's inputs and outputs are not the expected ones: " + INSTALL_HINT)
        self.batch_windows = max(1, int(batch_windows))

    def posteriorgrams(self, audio: np.ndarray, sample_rate: int) -> Posteriorgrams:
        """The note, onset and contour posteriorgrams of ``audio`` (float32 (channels, n) or (n,))."""
        signal = to_model_rate(audio, sample_rate)
        num_frames = signal.size // HOP_SAMPLES + 1 if signal.size else 0
        num_windows = -(-num_frames // KEPT_FRAMES)
        lead = EDGE_FRAMES * HOP_SAMPLES
        padded_length = (num_windows - 1) * WINDOW_STEP_SAMPLES + WINDOW_SAMPLES if num_windows else 0
        padded = np.zeros(max(padded_length, lead + signal.size), dtype=np.float32)
        padded[lead : lead + signal.size] = signal
        outputs: dict[str, list[np.ndarray]] = {key: [] for key in OUTPUT_NAMES}
        fetch = list(OUTPUT_NAMES.values())
        for first in range(0, num_windows, self.batch_windows):
            starts = range(first * WINDOW_STEP_SAMPLES, min(num_windows, first + self.batch_windows) * WINDOW_STEP_SAMPLES,
                           WINDOW_STEP_SAMPLES)  # fmt: skip
            batch = np.stack([padded[s : s + WINDOW_SAMPLES] for s in starts])[..., None]
            results = self.session.run(fetch, {INPUT_NAME: batch})
            for key, value in zip(OUTPUT_NAMES, results, strict=True):
                kept = value[:, EDGE_FRAMES : EDGE_FRAMES + KEPT_FRAMES]
                outputs[key].append(kept.reshape(-1, value.shape[-1]))
        empty = {"note": NUM_PITCHES, "onset": NUM_PITCHES, "contour": 3 * NUM_PITCHES}
        grams = {
            key: np.concatenate(parts)[:num_frames].astype(np.float32)
            if parts
            else np.zeros((0, empty[key]), np.float32)
            for key, parts in outputs.items()
        }
        return Posteriorgrams(grams["note"], grams["onset"], grams["contour"])

    def transcribe(
        self, audio: np.ndarray, sample_rate: int, settings: TranscriptionSettings | None = None
    ) -> list[Note]:
        """The notes of ``audio`` (float32 (channels, n) or (n,) at ``sample_rate`` Hz), by onset time."""
        settings = (settings or TranscriptionSettings()).check()
        return notes_from_posteriorgrams(self.posteriorgrams(audio, sample_rate), settings)


def transcribe(audio: np.ndarray, sample_rate: int, settings: TranscriptionSettings | None = None) -> list[Note]:
    """One call: load the network and transcribe ``audio`` (see :class:`Transcriber`)."""
    return Transcriber().transcribe(audio, sample_rate, settings)


# ---------------------------------------------------------------------------------------------------
# Posteriorgrams -> notes


def _onset_strength(note: np.ndarray, onset: np.ndarray, infer: bool) -> np.ndarray:
    """The onset posteriorgram, or (``infer``) its maximum with the note activation's sharp rises, scaled alike."""
    if not infer or note.shape[0] < 3:
        return onset
    rise = np.zeros_like(note)
    # a rise counts when the activation grew over both the last frame and the one before it
    rise[2:] = np.minimum(note[2:] - note[1:-1], note[2:] - note[:-2])
    np.maximum(rise, 0.0, out=rise)
    top = float(rise.max())
    if top <= 0.0:
        return onset
    return np.maximum(onset, rise * (float(onset.max()) / top))


def _run_length(activation: np.ndarray, start: int, step: int, threshold: float, gap_frames: int) -> int:
    """From ``start`` (exclusive) in direction ``step``: the index one past the last frame at or above
    ``threshold`` before more than ``gap_frames`` frames in a row fall below it (or the edge)."""
    last = start
    below = 0
    index = start + step
    while 0 <= index < activation.size and below <= gap_frames:
        if activation[index] >= threshold:
            last, below = index, 0
        else:
            below += 1
        index += step
    return last + step


def _claim(energy: np.ndarray, start: int, stop: int, row: int) -> None:
    """Take rows row-1..row+1 of frames [start, stop) for a note (neighbouring semitones are its partials' leakage)."""
    energy[start:stop, max(0, row - 1) : row + 2] = 0.0


def notes_from_posteriorgrams(grams: Posteriorgrams, settings: TranscriptionSettings | None = None) -> list[Note]:
    """Notes from the note and onset posteriorgrams (see the module docstring), sorted by onset then pitch."""
    settings = (settings or TranscriptionSettings()).check()
    note = np.array(grams.note, dtype=np.float32, copy=True)
    num_frames = note.shape[0]
    if num_frames < 2:
        return []
    low = max(0, settings.lowest_pitch - LOWEST_PITCH)
    high = min(NUM_PITCHES, settings.highest_pitch - LOWEST_PITCH + 1)
    outside = np.ones(NUM_PITCHES, dtype=bool)
    outside[low:high] = False
    note[:, outside] = 0.0
    onset = np.array(grams.onset, dtype=np.float32, copy=True)
    onset[:, outside] = 0.0
    strength = _onset_strength(note, onset, settings.infer_onsets)
    shortest = max(1, int(round(settings.minimum_note_seconds / FRAME_SECONDS)))
    threshold = settings.frame_threshold

    peak = np.zeros_like(strength, dtype=bool)
    peak[1:-1] = (strength[1:-1] > strength[:-2]) & (strength[1:-1] > strength[2:])
    frames, rows = np.nonzero(peak & (strength >= settings.onset_threshold))
    energy = note.copy()  # what is left for later notes to take
    found: list[tuple[int, int, int]] = []  # (start frame, stop frame, row)
    for start, row in sorted(zip(frames.tolist(), rows.tolist(), strict=True), reverse=True):
        stop = _run_length(energy[:, row], start, 1, threshold, settings.gap_frames)
        if stop - start < shortest:
            continue
        _claim(energy, start, stop, row)
        found.append((start, stop, row))

    if settings.notes_without_onsets:
        while True:
            index = int(np.argmax(energy))
            middle, row = divmod(index, NUM_PITCHES)
            if energy[middle, row] < threshold:
                break
            column = energy[:, row]
            stop = _run_length(column, middle, 1, threshold, settings.gap_frames)
            start = _run_length(column, middle, -1, threshold, settings.gap_frames) + 1
            _claim(energy, start, stop, row)
            if stop - start >= shortest:
                found.append((start, stop, row))

    notes = []
    for start, stop, row in found:
        velocity = int(np.clip(round(127 * float(note[start:stop, row].mean())), 1, 127))
        notes.append(Note(start * FRAME_SECONDS, stop * FRAME_SECONDS, row + LOWEST_PITCH, velocity))
    return sorted(notes, key=lambda n: (n.onset_seconds, n.pitch))
