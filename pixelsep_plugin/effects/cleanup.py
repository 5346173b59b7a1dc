"""Cleanup for old concert footage: mains hum, broadband noise and loudness, per stem, streamed.

Three processors for a recipe's effect chains (parameters in brackets, with their defaults):

- ``pixelsep.HumRemoval`` {"mains_hz": "auto" | 50 | 60, "harmonics": 8, "width_hz": 3.0}: notch
  filters at the mains frequency and its harmonics (second-order IIR notches, ``width_hz`` wide at
  -3 dB, run as one cascade of sections whose state is carried from block to block, so a stem cut
  into blocks of any size comes out as it does in one piece). With "auto" the hum is found in the
  stem's spectrum (Hann frames of about 1.5 s, half overlapping, 0.67 Hz apart at 44.1 kHz): a
  harmonic of 50 or 60 Hz is hum when its peak (looked for within 0.6 % of its nominal frequency,
  as tape and film speed move it) stands 6 dB above its neighbourhood (the median within 15 Hz)
  in the long-term spectrum and in at least 60 % of the frames (held notes come and go, hum
  stays). The stem has hum when one of the first three harmonics stands out 10 dB; of 50 and 60 Hz
  the one whose harmonics stand out more wins, and each of its hum harmonics is notched at its own
  measured peak. A stem without hum passes unchanged. With 50 or 60 every harmonic up to
  ``harmonics`` is notched at its nominal frequency.
- ``pixelsep.NoiseReduction`` {"reduction_db": 12.0, "stationary": true, "threshold_std": 1.5}:
  spectral gating by ``noisereduce``. Stationary: a noise profile made of the stem's quietest
  frames (the quietest tenth of its 0.19 s frames, at most 3 s of them, digital silence left out)
  sets a threshold per frequency (the profile's mean level plus ``threshold_std`` standard
  deviations, in dB); time-frequency cells below it are turned down by ``reduction_db`` (the
  gate's mask smoothed over 100 Hz and 50 ms). Broadband noise falls by less than that: the noise's
  own peaks that rise above the threshold pass (white noise, 12 dB: about 7 dB; a higher
  ``threshold_std`` gates more of it, and more of the quiet music with it).
  Non-stationary (``"stationary": false``): noisereduce follows the noise floor itself (a 2 s time
  constant). Either way the stem is gated in fixed chunks of 4 s counted from its first sample,
  each read with context on both sides (0.25 s, or 2 s non-stationary), so the result does not
  depend on how the stem is cut into blocks; the stage holds back one chunk and its context (its
  latency), and memory stays that size whatever the stem's length.
- ``pixelsep.Loudness`` {"target_lufs": -23.0, "max_gain_db": 20.0}: one constant gain that brings
  the stem's integrated loudness (ITU-R BS.1770-4, EBU R 128's -23 LUFS by default) to the target;
  a boost is held to ``max_gain_db`` (a cut is not limited). The loudness is the stem's after the
  ``pixelsep.*`` cleanup processors that come before this one in its chain (so hum removal and noise
  reduction in front of it are accounted for; other plugins in front of it are not). It is
  measured with ``pyloudnorm``'s meter, streamed: 30 s segments, each read with the second before
  it so that the K-weighting filters have settled, give the 400 ms block loudnesses, which are
  gated as BS.1770 says (-70 LUFS, then 10 LU below the rest) — equal to the meter's reading of
  the whole stem within 0.01 LU, in bounded memory. Up to 5 channels (the meter's). A silent stem,
  or one shorter than a 400 ms block, keeps its level.

What needs the whole stem (the hum, the noise profile, the loudness) is found lazily, at the first
``process`` call, never when a chain is built (building also checks recipes): one pass over the
unprocessed stem (:class:`StemSurvey`, shared by every cleanup processor of the stem) and, for
Loudness, one more through the processors in front of it. Where a processor can do nothing (no hum
found, a silent stem, a boost held back) it says so in one line with a :class:`CleanupWarning`.

Parameters are checked when the chain is built, without touching audio: an unknown name, a wrong
type or a value out of range is an :class:`~pixelsep_plugin.errors.InputError` in one line that
names the processor and the parameter.

:func:`cleanup_preset` puts the three at the head of every source's chain (hum removal and noise
reduction on the residual) and turns the residual down.
"""

from __future__ import annotations

import copy
import functools
import heapq
import importlib
import importlib.abc
import math
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelsep_plugin.effects import EffectWarning, StemContext, register
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe.document import GAIN_DB_RANGE, Effect, Recipe

HUM = "pixelsep.HumRemoval"
NOISE = "pixelsep.NoiseReduction"
LOUDNESS = "pixelsep.Loudness"
CLEANUP_PLUGINS = (HUM, NOISE, LOUDNESS)
EXTRA_HINT = "pip install 'pixelsep[cleanup]'"

# hum
MAINS_CHOICES = (50, 60)
HUM_SPECTRUM_SECONDS = 1.25  # frames of the next power of two at least this long (0.67 Hz apart at 44.1 kHz)
HUM_SPEED_TOLERANCE = 0.006  # a harmonic's peak is looked for within this share of its nominal frequency
HUM_NEIGHBOURHOOD_HZ = 15.0  # the level a harmonic stands out from: the median within this distance
HUM_FOUND_DB = 10.0  # hum is there when one of the first three harmonics stands out this much
HUM_NOTCHED_DB = 6.0  # a harmonic is notched (auto) when it stands out this much
HUM_STEADY_SHARE = 0.6  # and stands out in at least this share of the frames (held notes come and go; hum stays)
HUM_MAX_SHARE_OF_NYQUIST = 0.9
MAX_HARMONICS = 40
# noise
PROFILE_FRAME_SECONDS = 0.19  # frames of the nearest power of two (8192 samples at 44.1 kHz)
PROFILE_SHARE = 0.1  # the quietest tenth of the frames
PROFILE_MAX_SECONDS = 3.0
PROFILE_SILENCE_DBFS = -90.0  # frames quieter than this (digital silence) are not noise
GATE_CHUNK_SECONDS = 4.0
GATE_CONTEXT_SECONDS = {True: 0.25, False: 2.0}  # stationary, non-stationary
GATE_FFT_SECONDS = 0.046  # noisereduce's STFT: the nearest power of two (2048 at 44.1 kHz)
GATE_SMOOTH_HZ = 100.0  # the gate's mask is smoothed over this many Hz (wider smoothing dulls held notes)
GATE_SMOOTH_MS = 50.0  # and this many milliseconds
# loudness (ITU-R BS.1770-4)
BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = 10.0
METER_SEGMENT_SECONDS = 30
METER_WARMUP_SECONDS = 1
METER_MAX_CHANNELS = 5


class CleanupWarning(EffectWarning):
    """A cleanup processor could not do its work on a stem (one line: which, on which stem, why)."""


def _warn(plugin: str, context: StemContext, message: str) -> None:
    warnings.warn(f"{plugin} on {context.name}: {message}", CleanupWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------------
# Parameters


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parameters(effect: Effect, defaults: dict[str, Any]) -> dict[str, Any]:
    """The effect's parameters over ``defaults``; InputError for a name that is not among them."""
    given = effect.parameters if effect.parameters is not None else {}
    if not isinstance(given, dict):
        raise InputError(f"{effect.plugin}: parameters must be an object of {', '.join(defaults)}")
    unknown = sorted(str(name) for name in given if name not in defaults)
    if unknown:
        raise InputError(f"{effect.plugin}: unknown parameter {_short(unknown[0])}; it takes {', '.join(defaults)}")
    return {**defaults, **given}


def _number(plugin: str, name: str, value: Any, low: float, high: float, unit: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{plugin}: {name} must be a number{f' ({unit})' if unit else ''}, not {_short(value)}")
    if not low <= value <= high:
        raise InputError(f"{plugin}: {name} is {value:g}, outside [{low:g}, {high:g}]{f' {unit}' if unit else ''}")
    return float(value)


def _integer(plugin: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{plugin}: {name} must be a whole number, not {_short(value)}")
    if not low <= value <= high:
        raise InputError(f"{plugin}: {name} is {value}, outside [{low}, {high}]")
    return value


def _flag(plugin: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{plugin}: {name} must be true or false, not {_short(value)}")
    return value


# ---------------------------------------------------------------------------------------------------
# Optional dependencies, imported when a chain is built (so a missing one is reported before any work)


class _HideTorch(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail while noisereduce is imported: it probes for torch at import time,
    and the inference path never imports torch."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"{name} is not imported on the inference path", name=name)
        return None


def _import_noisereduce() -> Any:
    if "noisereduce" in sys.modules or "torch" in sys.modules:
        return importlib.import_module("noisereduce")
    hide = _HideTorch()
    sys.meta_path.insert(0, hide)
    try:
        return importlib.import_module("noisereduce")
    finally:
        sys.meta_path.remove(hide)


def _require(plugin: str, module: str, install: str = EXTRA_HINT) -> Any:
    try:
        return _import_noisereduce() if module == "noisereduce" else importlib.import_module(module)
    except ImportError:
        raise InputError(f"{plugin} needs {module.split('.')[0]}: {install}") from None


# ---------------------------------------------------------------------------------------------------
# One pass over the unprocessed stem: its spectrum (for hum) and its quietest frames (the noise profile)


def _power_of_two(samples: float) -> int:
    return 1 << max(4, int(round(math.log2(max(samples, 16.0)))))


def hum_fft_size(sample_rate: int) -> int:
    """Frame length of the hum spectrum: the power of two at least ``HUM_SPECTRUM_SECONDS`` long."""
    return 1 << max(4, math.ceil(math.log2(HUM_SPECTRUM_SECONDS * sample_rate)))


# ---------------------------------------------------------------------------------------------------
# Hum: where each harmonic of 50 and 60 Hz is looked for in a spectrum, and how far it stands out


@dataclass(frozen=True)
class _Harmonic:
    """Harmonic ``number`` of ``mains_hz``: the bins its peak is looked for in and the bins around it."""

    mains_hz: int
    number: int
    inside: np.ndarray
    around: np.ndarray


@functools.lru_cache(maxsize=8)
def _harmonics(sample_rate: int, n_fft: int) -> tuple[_Harmonic, ...]:
    """Every harmonic of 50 and 60 Hz (up to ``MAX_HARMONICS``) below 90 % of Nyquist, on an ``n_fft`` spectrum."""
    step = sample_rate / n_fft
    distance = np.arange(n_fft // 2 + 1) * step
    out = []
    for mains in MAINS_CHOICES:
        for number in range(1, MAX_HARMONICS + 1):
            nominal = number * mains
            if nominal >= HUM_MAX_SHARE_OF_NYQUIST * sample_rate / 2:
                break
            away = np.abs(distance - nominal)
            reach = max(HUM_SPEED_TOLERANCE * nominal, 1.5 * step)
            inside = np.flatnonzero(away <= reach)
            around = np.flatnonzero((away <= HUM_NEIGHBOURHOOD_HZ) & (away > reach + 2 * step))
            if not inside.size or not around.size:
                break
            out.append(_Harmonic(mains, number, inside, around))
    return tuple(out)


def _stands_out(power: np.ndarray, harmonic: _Harmonic) -> tuple[int, float]:
    """(the peak's bin, how far it stands out from the median of its neighbourhood in dB)."""
    peak = int(harmonic.inside[np.argmax(power[harmonic.inside])])
    floor = float(np.median(power[harmonic.around]))
    return peak, 10 * math.log10((power[peak] + 1e-30) / (floor + 1e-30))


@dataclass
class StemSurvey:
    """What one pass over a stem tells the cleanup processors.

    spectrum: the mean power spectrum over channels and Hann frames of ``hum_fft_size`` samples
    (half overlapping), shape (n_fft // 2 + 1,), bins ``frequency_step_hz`` apart.
    hum_steadiness: (mains_hz, harmonic number) -> the share of those frames in which the harmonic
    stands out by ``HUM_NOTCHED_DB``. noise_profile: float32 (n,), the channel mean of the stem's
    quietest frames in their order (None when every frame is digital silence). peak: the largest
    absolute sample. num_samples: per channel."""

    spectrum: np.ndarray
    frequency_step_hz: float
    hum_steadiness: dict[tuple[int, int], float]
    noise_profile: np.ndarray | None
    peak: float
    num_samples: int


class _SurveyPass:
    def __init__(self, sample_rate: int, num_samples: int):
        self.n_fft = hum_fft_size(sample_rate)
        self.hop = self.n_fft // 2
        self.window = np.hanning(self.n_fft)
        self.power = np.zeros(self.n_fft // 2 + 1)
        self.harmonics = _harmonics(sample_rate, self.n_fft)
        self.steady = np.zeros(len(self.harmonics))
        self.frames = 0
        self.spectrum_buffer: np.ndarray | None = None
        self.frame = _power_of_two(PROFILE_FRAME_SECONDS * sample_rate)
        total = num_samples // self.frame
        self.keep = max(1, min(math.ceil(PROFILE_SHARE * total), int(PROFILE_MAX_SECONDS * sample_rate) // self.frame))
        self.quietest: list[tuple[float, int, np.ndarray]] = []  # heap of (-energy, index, frame): the loudest on top
        self.profile_buffer = np.zeros(0, np.float32)
        self.profile_index = 0
        self.silence = 10 ** (PROFILE_SILENCE_DBFS / 10)
        self.peak = 0.0
        self.num_samples = 0
        self.sample_rate = sample_rate

    def _spectrum_frame(self, frame: np.ndarray) -> None:
        power = (np.abs(np.fft.rfft(frame * self.window, axis=-1)) ** 2).mean(axis=0)
        self.power += power
        self.steady += [_stands_out(power, h)[1] >= HUM_NOTCHED_DB for h in self.harmonics]
        self.frames += 1

    def _profile_frame(self, mono: np.ndarray) -> None:
        energy = float(np.mean(np.square(mono, dtype=np.float64)))
        self.profile_index += 1
        if energy <= self.silence:
            return
        item = (-energy, self.profile_index, mono.copy())
        if len(self.quietest) < self.keep:
            heapq.heappush(self.quietest, item)
        elif -self.quietest[0][0] > energy:
            heapq.heapreplace(self.quietest, item)

    def feed(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if not block.shape[-1]:
            return
        self.num_samples += block.shape[-1]
        self.peak = max(self.peak, float(np.abs(block).max()))
        wide = block.astype(np.float64)
        buffer = wide if self.spectrum_buffer is None else np.concatenate([self.spectrum_buffer, wide], axis=1)
        start = 0
        while buffer.shape[1] - start >= self.n_fft:
            self._spectrum_frame(buffer[:, start : start + self.n_fft])
            start += self.hop
        self.spectrum_buffer = buffer[:, start:]
        mono = np.concatenate([self.profile_buffer, block.mean(axis=0)])
        start = 0
        while mono.size - start >= self.frame:
            self._profile_frame(mono[start : start + self.frame])
            start += self.frame
        self.profile_buffer = mono[start:]

    def result(self) -> StemSurvey:
        if self.frames == 0 and self.spectrum_buffer is not None and self.spectrum_buffer.shape[1]:
            rest = self.spectrum_buffer
            self._spectrum_frame(np.pad(rest, ((0, 0), (0, self.n_fft - rest.shape[1]))))
        if not self.quietest and self.profile_buffer.size:  # shorter than one frame: the whole of it
            self._profile_frame(self.profile_buffer)
        quietest = sorted(self.quietest, key=lambda item: item[1])
        profile = np.concatenate([f for _, _, f in quietest]).astype(np.float32) if quietest else None
        frames = max(self.frames, 1)
        steadiness = {
            (h.mains_hz, h.number): float(n / frames) for h, n in zip(self.harmonics, self.steady, strict=True)
        }
        return StemSurvey(self.power / frames, self.sample_rate / self.n_fft, steadiness, profile, self.peak,
                          self.num_samples)  # fmt: skip


def survey_blocks(blocks: Iterable[np.ndarray], sample_rate: int, num_samples: int) -> StemSurvey:
    """A :class:`StemSurvey` of float32 (channels, n) blocks (``num_samples``: the expected length, for
    the size of the noise profile)."""
    survey = _SurveyPass(sample_rate, num_samples)
    for block in blocks:
        survey.feed(block)
    return survey.result()


def stem_survey(context: StemContext) -> StemSurvey:
    """The survey of the context's unprocessed stem: one pass, shared by the stem's cleanup processors."""
    key = "pixelsep.cleanup.survey"
    if key not in context.cache:
        context.cache[key] = survey_blocks(context.iter_stem(), context.sample_rate, context.num_samples)
    return context.cache[key]


# ---------------------------------------------------------------------------------------------------
# Hum


@dataclass(frozen=True)
class HumEstimate:
    """Mains hum found in a stem: mains_hz (50 or 60; None when none was found), the frequencies to
    notch in Hz, and for each of the first ``harmonics`` how far it stands out in the long-term
    spectrum (dB) and in what share of the frames it stands out."""

    mains_hz: int | None
    frequencies_hz: tuple[float, ...]
    prominence_db: tuple[float, ...]
    steadiness: tuple[float, ...]


def detect_hum(survey: StemSurvey, sample_rate: int, harmonics: int) -> HumEstimate:
    """Mains hum in a stem's survey (see the module docstring); ``harmonics`` counts the fundamental.

    A harmonic is hum when it stands out ``HUM_NOTCHED_DB`` in the long-term spectrum and in at least
    ``HUM_STEADY_SHARE`` of the frames; the stem has hum when one of the first three stands out
    ``HUM_FOUND_DB``. Of 50 and 60 Hz, the one whose harmonics stand out more wins."""
    spectrum, step = survey.spectrum, survey.frequency_step_hz
    best, best_score = HumEstimate(None, (), (), ()), 0.0
    for mains in MAINS_CHOICES:
        found, prominence, steadiness, score, strong = [], [], [], 0.0, False
        for harmonic in _harmonics(sample_rate, 2 * (spectrum.size - 1)):
            if harmonic.mains_hz != mains or harmonic.number > harmonics:
                continue
            peak, level = _stands_out(spectrum, harmonic)
            steady = survey.hum_steadiness.get((mains, harmonic.number), 0.0)
            prominence.append(round(level, 2))
            steadiness.append(round(steady, 2))
            if level < HUM_NOTCHED_DB or steady < HUM_STEADY_SHARE:
                continue
            strong = strong or (harmonic.number <= 3 and level >= HUM_FOUND_DB)
            score += min(level, 40.0)
            frequency = peak * step
            if 0 < peak < spectrum.size - 1:  # the peak between bins: a parabola through the log powers
                a, b, c = (math.log(spectrum[i] + 1e-30) for i in (peak - 1, peak, peak + 1))
                if a - 2 * b + c < 0:
                    frequency += step * float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5))
            found.append(float(frequency))
        if strong and score > best_score:
            best, best_score = HumEstimate(mains, tuple(found), tuple(prominence), tuple(steadiness)), score
    return best


def notch_sections(frequencies_hz: Iterable[float], width_hz: float, sample_rate: int) -> np.ndarray:
    """Second-order sections (n, 6) of notches at ``frequencies_hz``, each ``width_hz`` wide at -3 dB."""
    from scipy.signal import iirnotch

    rows = []
    for frequency in frequencies_hz:
        b, a = iirnotch(frequency, frequency / width_hz, fs=sample_rate)
        rows.append(np.concatenate([b, a]))
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


class HumRemoval:
    """The ``pixelsep.HumRemoval`` stage: notches found lazily (auto) or at the mains' multiples."""

    plugin = HUM

    def __init__(
        self, context: StemContext, mains: str | int, harmonics: int, width_hz: float, shared: dict | None = None
    ):
        self.context, self.mains, self.harmonics, self.width_hz = context, mains, harmonics, width_hz
        self.shared = shared if shared is not None else {}  # the notches, found once for this stage and its twins
        self.state: np.ndarray | None = None

    def twin(self) -> HumRemoval:
        """A fresh stage with the same notches (for measuring what this one outputs)."""
        return HumRemoval(self.context, self.mains, self.harmonics, self.width_hz, self.shared)

    def sections(self) -> np.ndarray:
        """The notch cascade, (n, 6) second-order sections (n = 0: nothing to remove)."""
        if "sections" not in self.shared:
            rate = self.context.sample_rate
            if self.mains == "auto":
                estimate = detect_hum(stem_survey(self.context), rate, self.harmonics)
                if estimate.mains_hz is None:
                    _warn(HUM, self.context, "no mains hum found (50 or 60 Hz); the stem passes unchanged")
                frequencies: tuple[float, ...] = estimate.frequencies_hz
                self.shared["estimate"] = estimate
            else:
                top = HUM_MAX_SHARE_OF_NYQUIST * rate / 2
                frequencies = tuple(k * float(self.mains) for k in range(1, self.harmonics + 1) if k * self.mains < top)
            self.shared["sections"] = notch_sections(frequencies, self.width_hz, rate)
        return self.shared["sections"]

    def process(self, block: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        block = np.asarray(block, dtype=np.float32)
        sections = self.sections()
        if not len(sections) or not block.shape[-1]:
            return block
        if self.state is None:
            self.state = np.zeros((len(sections), block.shape[0], 2))
        out, self.state = sosfilt(sections, block.astype(np.float64), axis=-1, zi=self.state)
        return out.astype(np.float32)

    def flush(self) -> np.ndarray:
        return np.zeros((self.context.num_channels, 0), np.float32)


@register(HUM)
def build_hum_removal(effect: Effect, context: StemContext) -> HumRemoval:
    """``pixelsep.HumRemoval`` {"mains_hz": "auto" | 50 | 60, "harmonics": 1-40, "width_hz": 0.5-20 Hz}."""
    p = _parameters(effect, {"mains_hz": "auto", "harmonics": 8, "width_hz": 3.0})
    mains = p["mains_hz"]
    if mains != "auto" and (isinstance(mains, bool) or mains not in MAINS_CHOICES):
        raise InputError(f'{HUM}: mains_hz must be "auto", 50 or 60, not {_short(mains)}')
    harmonics = _integer(HUM, "harmonics", p["harmonics"], 1, 40)
    width_hz = _number(HUM, "width_hz", p["width_hz"], 0.5, 20.0, "Hz")
    _require(HUM, "scipy.signal", "pip install scipy")
    _in_front(context, effect)
    stage = HumRemoval(context, "auto" if mains == "auto" else int(mains), harmonics, width_hz)
    _built(context, effect, stage)
    return stage


# ---------------------------------------------------------------------------------------------------
# Noise


class NoiseReduction:
    """The ``pixelsep.NoiseReduction`` stage: noisereduce's spectral gate over fixed chunks (see the module docstring).

    Holds back ``chunk + context`` samples per channel; the output stays aligned with the input."""

    plugin = NOISE

    def __init__(self, context: StemContext, reduction_db: float, stationary: bool, threshold_std: float):
        self.context, self.reduction_db, self.stationary, self.threshold_std = (
            context,
            reduction_db,
            stationary,
            threshold_std,
        )
        rate = context.sample_rate
        self.chunk = max(1, int(round(GATE_CHUNK_SECONDS * rate)))
        self.pad = int(round(GATE_CONTEXT_SECONDS[stationary] * rate))
        self.n_fft = _power_of_two(GATE_FFT_SECONDS * rate)
        self.held: np.ndarray | None = None  # the input from sample held_from on (zeros before the first)
        self.held_from = -self.pad
        self.received = 0
        self.next_chunk = 0  # the first sample of the next chunk to gate
        self.profile: np.ndarray | None = None
        self.ready = False
        self.active = True

    def twin(self) -> NoiseReduction:
        """A fresh stage with the same settings and (from the shared survey) the same profile."""
        return NoiseReduction(self.context, self.reduction_db, self.stationary, self.threshold_std)

    def _prepare(self) -> None:
        self.ready = True
        if self.reduction_db == 0:
            self.active = False
        elif self.stationary:
            profile = stem_survey(self.context).noise_profile
            if profile is None:
                self.active = False
                _warn(NOISE, self.context, "the stem is silent: no noise profile, the stem passes unchanged")
            elif profile.size < 2 * self.n_fft:  # a stem shorter than a frame: its noise repeated
                profile = np.resize(profile, 2 * self.n_fft)
            self.profile = profile

    def _gate(self, segment: np.ndarray) -> np.ndarray:
        noisereduce = _import_noisereduce()
        options: dict[str, Any] = {"y_noise": self.profile, "n_std_thresh_stationary": self.threshold_std,
                                   "clip_noise_stationary": False} if self.stationary else {}  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = noisereduce.reduce_noise(
                y=segment, sr=self.context.sample_rate, stationary=self.stationary,
                prop_decrease=1.0 - 10 ** (-self.reduction_db / 20), chunk_size=segment.shape[1], padding=0,
                n_fft=self.n_fft, freq_mask_smooth_hz=GATE_SMOOTH_HZ, time_mask_smooth_ms=GATE_SMOOTH_MS,
                use_tqdm=False, n_jobs=1, **options,
            )  # fmt: skip
        return np.asarray(out, dtype=np.float32).reshape(segment.shape)

    def _next_output(self) -> np.ndarray:
        """Gate the next chunk (zeros past the stem's end) and hand out the part of it that was received."""
        start, stop = self.next_chunk - self.pad, self.next_chunk + self.chunk + self.pad
        segment = np.zeros((self.held.shape[0], stop - start), np.float32)
        have = self.held[:, start - self.held_from : stop - self.held_from]
        segment[:, : have.shape[1]] = have
        gated = self._gate(segment)[:, self.pad : self.pad + self.chunk]
        gated = gated[:, : max(0, self.received - self.next_chunk)]
        self.next_chunk += self.chunk
        drop = self.next_chunk - self.pad - self.held_from
        self.held, self.held_from = self.held[:, drop:], self.held_from + drop
        return gated

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        if not self.ready:
            self._prepare()
        if not self.active:
            return block
        if self.held is None:
            self.held = np.zeros((block.shape[0], self.pad), np.float32)
        self.held = np.concatenate([self.held, block], axis=1)
        self.received += block.shape[1]
        pieces = [np.zeros((block.shape[0], 0), np.float32)]
        while self.received >= self.next_chunk + self.chunk + self.pad:
            pieces.append(self._next_output())
        return np.concatenate(pieces, axis=1)

    def flush(self) -> np.ndarray:
        pieces = [np.zeros((self.context.num_channels if self.held is None else self.held.shape[0], 0), np.float32)]
        if self.held is not None and self.active:
            while self.next_chunk < self.received:
                pieces.append(self._next_output())
        return np.concatenate(pieces, axis=1)


@register(NOISE)
def build_noise_reduction(effect: Effect, context: StemContext) -> NoiseReduction:
    """``pixelsep.NoiseReduction`` {"reduction_db": 0-60 dB, "stationary": bool, "threshold_std": 0-6}."""
    p = _parameters(effect, {"reduction_db": 12.0, "stationary": True, "threshold_std": 1.5})
    reduction_db = _number(NOISE, "reduction_db", p["reduction_db"], 0.0, 60.0, "dB")
    stationary = _flag(NOISE, "stationary", p["stationary"])
    threshold_std = _number(NOISE, "threshold_std", p["threshold_std"], 0.0, 6.0)
    _require(NOISE, "noisereduce")
    _in_front(context, effect)
    stage = NoiseReduction(context, reduction_db, stationary, threshold_std)
    _built(context, effect, stage)
    return stage


# ---------------------------------------------------------------------------------------------------
# Loudness


def gated_loudness(block_loudness: np.ndarray) -> float:
    """Integrated loudness (LUFS) from 400 ms block loudnesses (LUFS), gated as ITU-R BS.1770-4 says:
    blocks below -70 LUFS out, then blocks not above the rest's loudness - 10 LU. -inf when nothing is left."""
    levels = np.asarray(block_loudness, dtype=np.float64)
    power = 10 ** ((levels + 0.691) / 10)
    loud = levels >= ABSOLUTE_GATE_LUFS
    if not loud.any():
        return -math.inf
    relative = -0.691 + 10 * math.log10(float(power[loud].mean())) - RELATIVE_GATE_LU
    kept = (levels > relative) & (levels > ABSOLUTE_GATE_LUFS)
    if not kept.any():
        return -math.inf
    return -0.691 + 10 * math.log10(float(power[kept].mean()))


class LoudnessMeter:
    """Integrated loudness of a stream of float32 (channels, n) blocks, in bounded memory.

    pyloudnorm's meter reads segments of ``METER_SEGMENT_SECONDS`` (each with the second before it,
    over which the K-weighting settles; gating blocks start every 100 ms, so whole-second segments
    keep them where the meter puts them on the whole stream) and gives their block loudnesses;
    :func:`gated_loudness` gates all of them at the end."""

    def __init__(self, sample_rate: int):
        import pyloudnorm

        self.rate = int(sample_rate)
        self.meter = pyloudnorm.Meter(self.rate)
        self.segment = METER_SEGMENT_SECONDS * self.rate
        self.warmup = METER_WARMUP_SECONDS * self.rate
        self.overhang = math.ceil((BLOCK_SECONDS - STEP_SECONDS) * self.rate)  # the last block's reach past its segment
        self.blocks_per_second = round(1 / STEP_SECONDS)
        self.held: np.ndarray | None = None  # samples from held_from on
        self.held_from = 0
        self.next_segment = 0
        self.total = 0
        self.levels: list[np.ndarray] = []

    def _measure(self, start: int, stop: int | None) -> None:
        """Block loudnesses of the blocks that start in [start, stop) (to the end when stop is None)."""
        warm = min(self.warmup, start)
        first = start - warm - self.held_from
        piece = self.held[:, first : None if stop is None else stop + self.overhang - self.held_from]
        if piece.shape[1] < BLOCK_SECONDS * self.rate:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.meter.integrated_loudness(piece.T.astype(np.float64))
        levels = np.asarray(self.meter.blockwise_loudness, dtype=np.float64)
        skip = warm // self.rate * self.blocks_per_second
        count = None if stop is None else (stop - start) // self.rate * self.blocks_per_second
        self.levels.append(levels[skip : None if count is None else skip + count])

    def feed(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if not block.shape[-1]:
            return
        self.held = block if self.held is None else np.concatenate([self.held, block], axis=1)
        self.total += block.shape[-1]
        while self.total >= self.next_segment + self.segment + self.overhang:
            self._measure(self.next_segment, self.next_segment + self.segment)
            self.next_segment += self.segment
            drop = self.next_segment - self.warmup - self.held_from
            self.held, self.held_from = self.held[:, drop:], self.held_from + drop

    def loudness(self) -> float | None:
        """Integrated loudness in LUFS (-inf: silent; None: shorter than one 400 ms block)."""
        if self.held is None or self.total < BLOCK_SECONDS * self.rate:
            return None
        if self.total > self.next_segment:
            self._measure(self.next_segment, None)
        self.next_segment = self.total
        return gated_loudness(np.concatenate(self.levels)) if self.levels else None


def integrated_loudness(blocks: Iterable[np.ndarray], sample_rate: int) -> float | None:
    """Integrated loudness (LUFS, ITU-R BS.1770-4) of float32 (channels, n) blocks; see :class:`LoudnessMeter`."""
    meter = LoudnessMeter(sample_rate)
    for block in blocks:
        meter.feed(block)
    return meter.loudness()


def _through(blocks: Iterable[np.ndarray], stages: list) -> Iterator[np.ndarray]:
    """``blocks`` run through ``stages`` in order, their held-back output at the end."""
    for block in blocks:
        for stage in stages:
            block = stage.process(block)
        yield block
    for index, stage in enumerate(stages):
        block = stage.flush()
        for later in stages[index + 1 :]:
            block = later.process(block)
        yield block


class Loudness:
    """The ``pixelsep.Loudness`` stage: one gain, found lazily, to bring the stem to ``target_lufs``."""

    plugin = LOUDNESS

    def __init__(self, context: StemContext, target_lufs: float, max_gain_db: float, upstream: list,
                 shared: dict | None = None):  # fmt: skip
        self.context, self.target_lufs, self.max_gain_db = context, target_lufs, max_gain_db
        self.upstream = upstream  # the cleanup stages in front of this one, whose twins the measurement runs through
        self.shared = shared if shared is not None else {}

    def twin(self) -> Loudness:
        return Loudness(self.context, self.target_lufs, self.max_gain_db, self.upstream, self.shared)

    def gain_db(self) -> float:
        """The gain this stage applies, in dB (measured at the first call)."""
        if "gain_db" not in self.shared:
            twins = [stage.twin() for stage in self.upstream]
            measured = integrated_loudness(_through(self.context.iter_stem(), twins), self.context.sample_rate)
            self.shared["measured_lufs"] = measured
            gain = 0.0
            if measured is None:
                _warn(LOUDNESS, self.context, "the stem is shorter than one 400 ms block; its level is kept")
            elif measured == -math.inf:
                _warn(LOUDNESS, self.context, "the stem is silent (below -70 LUFS); its level is kept")
            else:
                gain = self.target_lufs - measured
                if gain > self.max_gain_db:
                    _warn(LOUDNESS, self.context, f"the stem measures {measured:.1f} LUFS; reaching "
                          f"{self.target_lufs:g} LUFS needs {gain:+.1f} dB, held to {self.max_gain_db:+g} dB (max_gain_db)")  # fmt: skip
                    gain = self.max_gain_db
            self.shared["gain_db"] = gain
        return self.shared["gain_db"]

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        gain = self.gain_db()
        return block if gain == 0 else block * np.float32(10 ** (gain / 20))

    def flush(self) -> np.ndarray:
        return np.zeros((self.context.num_channels, 0), np.float32)


@register(LOUDNESS)
def build_loudness(effect: Effect, context: StemContext) -> Loudness:
    """``pixelsep.Loudness`` {"target_lufs": -70 to 0 LUFS, "max_gain_db": 0-60 dB}."""
    p = _parameters(effect, {"target_lufs": -23.0, "max_gain_db": 20.0})
    target = _number(LOUDNESS, "target_lufs", p["target_lufs"], -70.0, 0.0, "LUFS")
    max_gain_db = _number(LOUDNESS, "max_gain_db", p["max_gain_db"], 0.0, 60.0, "dB")
    if context.num_channels > METER_MAX_CHANNELS:
        raise InputError(
            f"{LOUDNESS}: the stem has {context.num_channels} channels; the loudness meter reads at most "
            f"{METER_MAX_CHANNELS}: down-mix the clip first"
        )
    _require(LOUDNESS, "pyloudnorm")
    stage = Loudness(context, target, max_gain_db, _in_front(context, effect))
    _built(context, effect, stage)
    return stage


# ---------------------------------------------------------------------------------------------------
# The cleanup stages built on one stem, in chain order (Loudness measures through those in front of it)

_BUILT = "pixelsep.cleanup.built"


def _in_front(context: StemContext, effect: Effect) -> list:
    """The cleanup stages built before ``effect`` on this stem, in chain order (when the same chain is
    built again on the same context, it starts over from ``effect``)."""
    built = context.cache.setdefault(_BUILT, [])
    for index, (other, _) in enumerate(built):
        if other is effect:
            del built[index:]
            break
    return [stage for _, stage in built]


def _built(context: StemContext, effect: Effect, stage: object) -> None:
    context.cache.setdefault(_BUILT, []).append((effect, stage))


# ---------------------------------------------------------------------------------------------------
# The preset


def cleanup_chain(target_lufs: float | None) -> list[Effect]:
    """The preset's chain: hum removal, noise reduction and (with a target) loudness to ``target_lufs``."""
    chain = [
        Effect(HUM, {"mains_hz": "auto", "harmonics": 8}),
        Effect(NOISE, {"reduction_db": 12.0, "stationary": True}),
    ]
    if target_lufs is not None:
        chain.append(Effect(LOUDNESS, {"target_lufs": float(target_lufs), "max_gain_db": 20.0}))
    return chain


def _without_cleanup_head(effects: list[Effect]) -> list[Effect]:
    """The effects after the leading run of cleanup processors (what an earlier preset put there)."""
    index = 0
    while index < len(effects) and effects[index].plugin in CLEANUP_PLUGINS:
        index += 1
    return effects[index:]


def cleanup_preset(recipe: Recipe, target_lufs: float = -23.0, rest_db: float = -12.0) -> Recipe:
    """A copy of ``recipe`` cleaned up for old concert footage.

    Every source's chain starts with HumRemoval (auto), NoiseReduction (stationary, 12 dB) and
    Loudness to ``target_lufs`` (LUFS; one common loudness for all performers); the residual's starts
    with HumRemoval and NoiseReduction, and its gain is set to ``rest_db`` (dB: everything else down).
    Cleanup processors already at the head of a chain are replaced, so applying the preset again
    (with the same or other values) does not stack; the rest of each chain is kept after them."""
    _number("cleanup preset", "target_lufs", target_lufs, -70.0, 0.0, "LUFS")
    _number("cleanup preset", "rest_db", rest_db, *GAIN_DB_RANGE, "dB")
    out = copy.deepcopy(recipe)
    for source in out.sources:
        source.effects = cleanup_chain(target_lufs) + _without_cleanup_head(source.effects)
    out.residual.effects = cleanup_chain(None) + _without_cleanup_head(out.residual.effects)
    out.residual.gain_db = float(rest_db)
    return out.validate()
