"""pedalboard's built-in plugins and VST3 plugins as streamed stages of an effect chain.

An effect named by a pedalboard class (``"Reverb"``) is built from its parameters, each checked
against the range in :data:`PLUGINS` before anything is made; an effect named by a ``.vst3`` path
(or an Audio Unit ``.component`` where pedalboard hosts them) is loaded with ``pedalboard.load_plugin``,
its saved ``state`` (base64 of ``plugin.raw_state``) restored, then its parameters set by their
pedalboard names (``attack_ms``) within the ranges the plugin reports. Every error is one line that
names the plugin, the parameter and the range, raised when the chain is built, before any audio.

Ranges (:data:`PLUGINS`): pedalboard 0.9 checks some parameters itself (``Reverb``'s levels in
[0, 1], ``Delay``'s 30 s, ``PitchShift``'s six octaves, ``Compressor``'s ratio >= 1, ...). Others it
passes on to JUCE's DSP classes, which only assert their ranges in debug builds; the release build
pedalboard ships takes any value there (a ``Chorus`` depth of 5, a ``Phaser`` mix of -1) and
plays it as best it can. Those ranges are the ones JUCE asserts (``Chorus``: centre delay in
(0, 100) ms, depth and mix in [0, 1], feedback in [-1, 1]; ``Phaser`` likewise with a centre
frequency below Nyquist; ``NoiseGate`` and ``LadderFilter`` as the source says) and cutoff
frequencies are held to (0, sample_rate / 2]. Levels in dB with no natural limit (``Gain``,
``Distortion``, thresholds) only need to be finite.

:class:`PedalboardStage` streams a ``pedalboard.Pedalboard`` with ``reset=False`` so that its output
is the samples ``board(whole_stem, sample_rate)`` would give, block for block:

- The stem is handed to pedalboard in blocks of exactly :data:`BLOCK_SAMPLES` (8192, pedalboard's
  own ``buffer_size``), whatever sizes the stage is given, the last one padded with silence. Every
  call then prepares the plugins for the same block size (pedalboard re-prepares a plugin, clearing
  its state, whenever a call brings a larger block than it was prepared for), and a plugin with no
  latency in front of it sees the blocks it sees when the whole stem is processed at once (the MP3
  encoder's output depends on them; the other built-ins that stream give the same samples whatever
  the block size, once their state is kept).
- pedalboard compensates a plugin's latency by handing back fewer samples while it fills (a
  ``PitchShift`` holds back about 47,700 at 44.1 kHz, a ``BrickwallLimiter`` its lookahead, a VST3
  plugin the latency it reports): the stream it returns starts with the output of the stem's first
  sample. The stage keeps that stream as it is and, on ``flush``, feeds silence until every input
  sample has come out, then on through the board's tail (reverb, delay and chorus ring-out) until it
  has been below -100 dBFS for longer than the board's longest internal gap (a delay's time, an
  impulse response's length); a tail is at most ``max_tail_seconds`` long.
- pedalboard removes a VST3 plugin's latency only once the plugin has processed audio (a fresh
  ZaMaximX2, which reports 480 samples, streams 480 samples late on its first calls): each stage
  processes one block of silence when it is built (which also checks that the plugins take the
  stem's channels and sample rate) and resets the board before the stem starts.
- pedalboard 0.9.26 cannot stream the plugins it primes with silence (``PitchShift`` and
  ``GSMFullRateCompressor``): their priming delay line is cleared at every call, so with
  ``reset=False`` they return silence (spotify/pedalboard#415). A board holding one of them keeps
  the whole stem and processes it in one call at ``flush`` (memory grows with the stem's length);
  :func:`streams_in_blocks` checks once per process whether the installed pedalboard streams them
  faithfully, and then they are streamed like the rest.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pedalboard

from pixelsep_plugin.effects import DEFAULT_TAIL_SECONDS, Stage, StemContext
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe.document import Effect

BLOCK_SAMPLES = 8192  # pedalboard's default buffer_size: the blocks its plugins see in a whole-stem call
SILENCE = 1e-5  # -100 dBFS: a tail quieter than this has rung out
EXTERNAL_SUFFIXES = (".vst3", ".component")
PRIMED_PLUGINS = ("PitchShift", "GSMFullRateCompressor")  # wrapped in pedalboard's PrimeWithSilence
MAX_LATENCY_SECONDS = 30.0  # silence fed on flush beyond the tail before a plugin is taken to be stuck
EXTRA_HINT = "pip install 'pixelsep[effects]'"

# ---------------------------------------------------------------------------------------------------
# Parameters of the built-in plugins


@dataclass(frozen=True)
class Param:
    """One parameter of a built-in plugin: a number in [low, high] (an end that is None is open-ended;
    ``low_open``/``high_open`` exclude the end itself; ``nyquist`` puts ``high`` at half the sample
    rate), a flag (``kind="bool"``), one of ``choices`` (``kind="choice"``) or a file (``kind="path"``)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nyquist: bool = False
    kind: str = "number"
    choices: tuple[str, ...] = ()

    def high_for(self, sample_rate: float) -> float | None:
        return sample_rate / 2 if self.nyquist else self.high

    def describe(self, sample_rate: float) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "path":
            return "an audio file"
        high = self.high_for(sample_rate)
        if self.low is None and high is None:
            return "a finite number"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or high is None else "]"
        return (
            f"{left}{'-inf' if self.low is None else f'{self.low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"
        )

    def admits(self, value: float, sample_rate: float) -> bool:
        high = self.high_for(sample_rate)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return high is None or not (value > high or (self.high_open and value == high))


def _number(low: float | None = None, high: float | None = None, **kw: Any) -> Param:
    return Param(low, high, **kw)


_UNIT = _number(0.0, 1.0)
_FLAG = Param(kind="bool")
_PATH = Param(kind="path")
_NONNEGATIVE = _number(0.0)
_CUTOFF = _number(0.0, low_open=True, nyquist=True)
_QUALITIES = tuple(pedalboard.Resample.Quality.__members__)
_LADDER_MODES = tuple(pedalboard.LadderFilter.Mode.__members__)
_SHELF = {"cutoff_frequency_hz": _CUTOFF, "gain_db": _number(), "q": _number(0.0, low_open=True)}

# class name -> its parameters, in the order of its constructor. Where pedalboard checks a range
# the range is pedalboard's; the others are what JUCE asserts (see the module's docstring).
PLUGINS: dict[str, dict[str, Param]] = {
    "Bitcrush": {"bit_depth": _number(0.0, 32.0)},
    "BrickwallLimiter": {
        "ceiling_db": _number(),
        "release_ms": _number(0.0, low_open=True),
        "lookahead_ms": _number(0.0, 100.0, low_open=True),
        "true_peak": _FLAG,
    },
    "Chorus": {
        "rate_hz": _number(0.0, 100.0, high_open=True),
        "depth": _UNIT,
        "centre_delay_ms": _number(0.0, 100.0, low_open=True, high_open=True),
        "feedback": _number(-1.0, 1.0),
        "mix": _UNIT,
    },
    "Clipping": {"threshold_db": _number()},
    "Compressor": {
        "threshold_db": _number(),
        "ratio": _number(1.0),
        "attack_ms": _NONNEGATIVE,
        "release_ms": _NONNEGATIVE,
    },
    "Convolution": {"impulse_response_filename": _PATH, "mix": _UNIT},
    "Delay": {"delay_seconds": _number(0.0, 30.0), "feedback": _UNIT, "mix": _UNIT},
    "Distortion": {"drive_db": _number()},
    "GSMFullRateCompressor": {"quality": Param(kind="choice", choices=_QUALITIES)},
    "Gain": {"gain_db": _number()},
    "HighShelfFilter": _SHELF,
    "HighpassFilter": {"cutoff_frequency_hz": _CUTOFF},
    "Invert": {},
    "LadderFilter": {
        "mode": Param(kind="choice", choices=_LADDER_MODES),
        "cutoff_hz": _CUTOFF,
        "resonance": _UNIT,
        "drive": _number(1.0),
    },
    "Limiter": {"threshold_db": _number(), "release_ms": _NONNEGATIVE},
    "LowShelfFilter": _SHELF,
    "LowpassFilter": {"cutoff_frequency_hz": _CUTOFF},
    "MP3Compressor": {"vbr_quality": _number(0.0, 10.0)},
    "NoiseGate": {
        "threshold_db": _number(),
        "ratio": _number(1.0),
        "attack_ms": _NONNEGATIVE,
        "release_ms": _NONNEGATIVE,
    },
    "PeakFilter": _SHELF,
    "Phaser": {
        "rate_hz": _number(0.0, 100.0, high_open=True),
        "depth": _UNIT,
        "centre_frequency_hz": _number(0.0, low_open=True, high_open=True, nyquist=True),
        "feedback": _number(-1.0, 1.0),
        "mix": _UNIT,
    },
    "PitchShift": {"semitones": _number(-72.0, 72.0)},
    "Resample": {
        "target_sample_rate": _number(0.0, low_open=True),
        "quality": Param(kind="choice", choices=_QUALITIES),
    },
    "Reverb": {name: _UNIT for name in ("room_size", "damping", "wet_level", "dry_level", "width", "freeze_mode")},
}
# pedalboard classes that are not one effect made from parameters: containers, hosts of plugin files, bases
NOT_EFFECTS = ("Chain", "Mix", "Pedalboard", "PluginContainer", "Plugin", "IIRFilter", "ExternalPlugin",
               "VST3Plugin", "AudioUnitPlugin")  # fmt: skip
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# how long (seconds) a plugin's output may stay silent inside its tail; plugins not named here stop
# sounding when their input does
_TAIL_GAP_SECONDS = {"Reverb": 0.25, "Chorus": 0.25, "Phaser": 0.25, "PitchShift": 0.1}
EXTERNAL_TAIL_GAP_SECONDS = 1.0


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_value(plugin: str, name: str, spec: Param, value: Any, sample_rate: float) -> Any:
    """``value`` as the plugin's constructor takes it; InputError (one line) when it is not admitted."""
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{plugin}: {name} must be true or false, not {_short(value)}")
        return value
    if spec.kind == "choice":
        if value not in spec.choices:
            raise InputError(f"{plugin}: {name} is {_short(value)}, not {spec.describe(sample_rate)}")
        return value
    if spec.kind == "path":
        if not isinstance(value, str) or not value:
            raise InputError(f"{plugin}: {name} must be the path of an audio file, not {_short(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{plugin}: {name} must be a number in {spec.describe(sample_rate)}, not {_short(value)}")
    if not spec.admits(value, sample_rate):
        raise InputError(f"{plugin}: {name} is {value:g}, outside {spec.describe(sample_rate)}")
    return float(value)


def _builtin_class(name: str) -> type:
    cls = getattr(pedalboard, name, None)
    if name not in PLUGINS or not isinstance(cls, type):
        raise InputError(f"unknown pedalboard plugin {name!r}: use one of {', '.join(supported_plugins())}")
    return cls


def supported_plugins() -> list[str]:
    """The pedalboard plugins an effect chain takes by name (those of :data:`PLUGINS` this pedalboard has)."""
    return [name for name in PLUGINS if isinstance(getattr(pedalboard, name, None), type)]


def _resolve(path_text: str, base_folder: Any) -> Path:
    path = Path(path_text).expanduser()
    if not path.is_absolute() and base_folder is not None:
        path = Path(base_folder) / path
    return path


def make_builtin(name: str, parameters: Mapping[str, Any], sample_rate: float, base_folder: Any = None):
    """A pedalboard built-in plugin from checked parameters (missing ones keep pedalboard's defaults).

    sample_rate: the stem's, in Hz (cutoffs must lie below its Nyquist frequency). base_folder: what
    a relative impulse-response path is resolved against. Raises InputError in one line."""
    cls = _builtin_class(name)
    specs = PLUGINS[name]
    if not isinstance(parameters, Mapping):
        raise InputError(f"{name}: parameters must be an object of {', '.join(specs) or 'nothing'}")
    unknown = sorted(str(key) for key in parameters if key not in specs)
    if unknown:
        takes = f"it takes {', '.join(specs)}" if specs else "it takes no parameters"
        raise InputError(f"{name}: unknown parameter {_short(unknown[0])}; {takes}")
    values = {
        key: _check_value(name, key, specs[key], parameters[key], sample_rate) for key in specs if key in parameters
    }
    for key, spec in specs.items():
        if spec.kind == "choice" and key in values:
            enum = pedalboard.LadderFilter.Mode if key == "mode" else pedalboard.Resample.Quality
            values[key] = enum.__members__[values[key]]
    if name == "Convolution":
        if "impulse_response_filename" not in values:
            raise InputError("Convolution: give impulse_response_filename, the audio file of its impulse response")
        path = _resolve(values["impulse_response_filename"], base_folder)
        if not path.is_file():
            raise InputError(f"Convolution: impulse response {path} not found")
        values["impulse_response_filename"] = str(path)
    if name == "MP3Compressor" and int(sample_rate) not in MP3_SAMPLE_RATES:
        rates = ", ".join(f"{r:g}" for r in MP3_SAMPLE_RATES)
        raise InputError(f"MP3Compressor: the stem's sample rate {sample_rate:g} Hz is not one MP3 has ({rates})")
    try:
        return cls(**values)
    except (ValueError, RuntimeError, TypeError) as error:  # pedalboard's own checks, e.g. an unreadable file
        raise InputError(f"{name}: {str(error).splitlines()[0]}") from None


# ---------------------------------------------------------------------------------------------------
# VST3 (and Audio Unit) plugins

_EXTERNAL_PATHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # plugin -> the file it was loaded from


def is_external_name(name: str) -> bool:
    """Whether an effect's plugin name is the path of a plugin file rather than a class name."""
    return name.lower().endswith(EXTERNAL_SUFFIXES) or "/" in name or "\\" in name


def _set_external_parameter(label: str, plugin, name: str, value: Any) -> None:
    parameters = plugin.parameters
    if name not in parameters:
        known = ", ".join(list(parameters)[:12]) + (", ..." if len(parameters) > 12 else "")
        raise InputError(f"{label}: unknown parameter {_short(name)}; it has {known}")
    parameter = parameters[name]
    low, high = parameter.min_value, parameter.max_value
    choices = parameter.valid_values if parameter.type is str else None
    if isinstance(value, bool):
        if not parameter.is_boolean and (low, high) != (0.0, 1.0):
            raise InputError(f"{label}: {name} is not an on/off parameter; give a number in [{low:g}, {high:g}]")
    elif isinstance(value, int | float):
        if not math.isfinite(value) or low is None or high is None or not low <= value <= high:
            where = f"[{low:g}, {high:g}]" if low is not None and high is not None else "one of its values"
            raise InputError(f"{label}: {name} is {_short(value)}, outside {where}")
    elif isinstance(value, str):
        if choices and value not in choices:
            shown = ", ".join(map(str, choices[:8])) + (", ..." if len(choices) > 8 else "")
            raise InputError(f"{label}: {name} is {_short(value)}, not one of {shown}")
    else:
        raise InputError(
            f"{label}: {name} must be a number, true/false or one of its named values, not {_short(value)}"
        )
    try:
        setattr(plugin, name, value)
    except (ValueError, TypeError, AttributeError) as error:
        raise InputError(f"{label}: {name}={_short(value)} is not accepted ({str(error).splitlines()[0]})") from None


def load_plugin(path: str | Path, parameters: Mapping[str, Any] | None = None, state: str | None = None,
                base_folder: Any = None):  # fmt: skip
    """A VST3 plugin (or an Audio Unit, where pedalboard hosts them) from its file, with its saved
    ``state`` (base64 of ``plugin.raw_state``) restored and then ``parameters`` set by their pedalboard
    names, in the units the plugin shows (``{"attack_ms": 20}``); raises InputError in one line.

    The plugin remembers its path, so :func:`effect_from_plugin` can write it to a recipe."""
    resolved = _resolve(str(path), base_folder)
    label = resolved.name
    if not resolved.exists():
        raise InputError(f"plugin file {resolved} not found: give the path of a .vst3 plugin")
    if not resolved.name.lower().endswith(EXTERNAL_SUFFIXES):
        raise InputError(f"{label} is not a plugin pixelsep can load: give a .vst3 plugin")
    try:
        plugin = pedalboard.load_plugin(str(resolved))
    except (ImportError, RuntimeError, ValueError, OSError) as error:
        raise InputError(f"cannot load plugin {label}: {str(error).splitlines()[0]}") from None
    if not plugin.is_effect:
        raise InputError(f"{label} is an instrument, not an effect: effect chains process audio")
    if state is not None:
        try:
            raw = base64.b64decode("".join(state.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{label}: its state is not base64 text") from None
        try:
            plugin.raw_state = raw
        except (ValueError, RuntimeError) as error:
            raise InputError(f"{label}: its saved state does not load ({str(error).splitlines()[0]})") from None
    for name, value in dict(parameters or {}).items():
        _set_external_parameter(label, plugin, str(name), value)
    _EXTERNAL_PATHS[plugin] = str(resolved)
    return plugin


def plugin_path(plugin) -> str | None:
    """The file a plugin was loaded from by :func:`load_plugin` (None for other plugins)."""
    try:
        return _EXTERNAL_PATHS.get(plugin)
    except TypeError:
        return None


# ---------------------------------------------------------------------------------------------------
# Between recipe effects and pedalboard plugins


def plugin_from_effect(effect: Effect, sample_rate: float, base_folder: Any = None):
    """The pedalboard plugin of a recipe effect (a built-in by class name, or a plugin file by path)."""
    if is_external_name(effect.plugin):
        return load_plugin(effect.plugin, effect.parameters, effect.state, base_folder)
    if effect.state is not None:
        raise InputError(f"{effect.plugin}: a built-in plugin has no saved state; remove its state")
    return make_builtin(effect.plugin, effect.parameters, sample_rate, base_folder)


def _json_value(value: Any) -> Any:
    """A plugin attribute as a recipe value: enums by name, float32 numbers in their shortest form."""
    if hasattr(value, "name") and hasattr(type(value), "__members__"):
        return value.name
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.floating):
        number = float(str(np.float32(value)))
        return int(number) if number.is_integer() and abs(number) < 2**31 else number
    return str(value)


def _settle(plugin) -> None:
    """Let a plugin file's processor take the parameters set from Python: a VST3 plugin passes them
    to its processor while it processes, and only then does its saved state hold them. One short
    block of silence, then a reset."""
    for num_channels in (2, 1):
        try:
            plugin(np.zeros((num_channels, 512), dtype=np.float32), 48000.0, reset=True)
        except ValueError:  # a bus of another width: try the next
            continue
        break
    plugin.reset()


def effect_from_plugin(plugin) -> Effect:
    """The recipe effect of a pedalboard plugin: a built-in's parameters, or a plugin file's path and
    its state (base64 of ``raw_state``). Raises InputError for what a recipe cannot hold."""
    kind = type(plugin).__name__
    if isinstance(plugin, pedalboard.ExternalPlugin):
        path = plugin_path(plugin)
        if path is None:
            raise InputError(
                f"plugin {plugin.name!r} was not loaded with pixelsep's load_plugin, so its file is unknown: "
                "load it with load_plugin(PATH)"
            )
        _settle(plugin)
        return Effect(path, {}, base64.b64encode(bytes(plugin.raw_state)).decode("ascii"))
    if kind not in PLUGINS:
        raise InputError(f"a recipe's effect chain cannot hold a pedalboard {kind}: use plugins in series")
    parameters = {name: _json_value(getattr(plugin, name)) for name in PLUGINS[kind]}
    if kind == "Convolution" and not parameters["impulse_response_filename"]:
        raise InputError(
            "a Convolution made from an array cannot be written to a recipe: load its impulse response from a file"
        )
    return Effect(kind, parameters)


# ---------------------------------------------------------------------------------------------------
# The stage


def _leaves(plugin) -> Iterator:
    """The plugins of a board, containers (Chain, Mix) opened."""
    if isinstance(plugin, pedalboard.PluginContainer):
        for child in plugin:
            yield from _leaves(child)
    else:
        yield plugin


def _tail_gap_seconds(plugin) -> float:
    """How long the plugin's output may stay silent while its tail still has something to play."""
    kind = type(plugin).__name__
    if isinstance(plugin, pedalboard.ExternalPlugin):
        return EXTERNAL_TAIL_GAP_SECONDS
    if kind == "Delay":
        return float(plugin.delay_seconds) + 0.1
    if kind == "Convolution":
        from pedalboard.io import AudioFile

        try:
            with AudioFile(plugin.impulse_response_filename) as file:
                return float(file.duration) + 0.1
        except (OSError, RuntimeError, ValueError, TypeError):
            return 1.0
    return _TAIL_GAP_SECONDS.get(kind, 0.0)


def _run(board, block: np.ndarray, sample_rate: int, reset: bool, label: str) -> np.ndarray:
    try:
        out = board(block, sample_rate, buffer_size=BLOCK_SAMPLES, reset=reset)
    except (ValueError, RuntimeError, TypeError) as error:
        raise InputError(f"{label}: {str(error).splitlines()[0]}") from None
    return np.asarray(out, dtype=np.float32).reshape(block.shape[0], -1)


class PedalboardStage:
    """A ``pedalboard.Pedalboard`` as a streamed :class:`~pixelsep_plugin.effects.Stage`.

    Output sample i is the board's output for input sample i, as ``board(whole_stem, sample_rate)``
    gives it (see the module's docstring for how). ``process(block)``: float32 (num_channels, n) in,
    float32 (num_channels, m) out, m >= 0. ``flush()``: the rest, then the tail (at most
    ``max_tail_seconds``). The board is reset when the stage is made and belongs to the stage until
    it is flushed.

    held: whether the whole stem is kept and processed at ``flush`` (a plugin pedalboard cannot stream)."""

    def __init__(self, board, sample_rate: int, num_channels: int, max_tail_seconds: float = DEFAULT_TAIL_SECONDS,
                 label: str = "pedalboard"):  # fmt: skip
        if num_channels < 1:
            raise InputError(f"{label}: a stem needs at least one channel, not {num_channels}")
        self.board = board
        self.sample_rate = int(sample_rate)
        self.num_channels = int(num_channels)
        self.label = label
        leaves = list(_leaves(board))
        self.held = any(not streams_in_blocks(type(p).__name__) for p in leaves)
        self.tail_gap_samples = int(round(max((_tail_gap_seconds(p) for p in leaves), default=0.0) * self.sample_rate))
        self.max_tail_samples = int(round(max(0.0, max_tail_seconds) * self.sample_rate))
        self.received = 0  # input samples per channel
        self.emitted = 0  # output samples per channel handed out
        self._buffer = np.zeros((self.num_channels, BLOCK_SAMPLES), dtype=np.float32)
        self._filled = 0
        self._kept: list[np.ndarray] = []
        self._flushed = False
        # one block of silence: the plugins are prepared (pedalboard removes a VST3 plugin's latency
        # from then on) and checked against the stem's channels and rate; then the board starts afresh
        _run(board, self._buffer, self.sample_rate, True, label)
        board.reset()

    def _empty(self) -> np.ndarray:
        return np.zeros((self.num_channels, 0), dtype=np.float32)

    def _out(self, pieces: list[np.ndarray]) -> np.ndarray:
        out = np.concatenate(pieces, axis=1) if pieces else self._empty()
        self.emitted += out.shape[1]
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.num_channels:
            raise InputError(f"{self.label}: blocks must be ({self.num_channels}, n) float32, not {block.shape}")
        if self._flushed:
            raise InputError(f"{self.label}: the stage was flushed; make a new one for another stem")
        n = block.shape[1]
        self.received += n
        if self.held:
            if n:
                self._kept.append(block.copy())
            return self._empty()
        pieces = []
        position = 0
        while position < n:
            take = min(BLOCK_SAMPLES - self._filled, n - position)
            self._buffer[:, self._filled : self._filled + take] = block[:, position : position + take]
            self._filled += take
            position += take
            if self._filled == BLOCK_SAMPLES:
                pieces.append(_run(self.board, self._buffer, self.sample_rate, False, self.label))
                self._filled = 0
        return self._out(pieces)

    def flush(self) -> np.ndarray:
        """The output still held back, then the tail; afterwards the stage takes no more input."""
        if self._flushed:
            return self._empty()
        self._flushed = True
        if self.received == 0:
            return self._empty()
        pieces: list[np.ndarray] = []
        silence_samples = BLOCK_SAMPLES
        if self.held:
            whole = np.concatenate(self._kept, axis=1)
            self._kept = []
            pieces.append(_run(self.board, whole, self.sample_rate, True, self.label))
            silence_samples = min(BLOCK_SAMPLES, self.received)  # no larger than that call's blocks
        elif self._filled:
            self._buffer[:, self._filled :] = 0.0
            pieces.append(_run(self.board, self._buffer, self.sample_rate, False, self.label))
            self._filled = 0
        total = self.emitted + sum(piece.shape[1] for piece in pieces)
        last_sound = self._last_sound(pieces, self.emitted)
        limit = self.received + self.max_tail_samples
        silence = np.zeros((self.num_channels, silence_samples), dtype=np.float32)
        fed = 0
        while total < limit and fed <= self.max_tail_samples + MAX_LATENCY_SECONDS * self.sample_rate:
            if total >= self.received and total - max(last_sound, self.received) >= self.tail_gap_samples:
                break  # every input sample is out and the tail has rung out
            piece = _run(self.board, silence, self.sample_rate, False, self.label)
            fed += silence_samples
            last_sound = max(last_sound, self._last_sound([piece], total))
            pieces.append(piece)
            total += piece.shape[1]
        end = min(limit, max(self.received, last_sound))
        out = np.concatenate(pieces, axis=1)[:, : max(0, end - self.emitted)]
        short = self.received - (self.emitted + out.shape[1])
        if short > 0:  # a plugin that never handed its last samples back: the stem keeps its length
            out = np.concatenate([out, np.zeros((self.num_channels, short), np.float32)], axis=1)
        return self._out([out])

    @staticmethod
    def _last_sound(pieces: list[np.ndarray], start: int) -> int:
        """One past the last sample above :data:`SILENCE` in ``pieces`` (which begin at ``start``), or 0."""
        last = 0
        for piece in pieces:
            loud = np.flatnonzero(np.abs(piece).max(axis=0, initial=0.0) > SILENCE) if piece.size else []
            if len(loud):
                last = start + int(loud[-1]) + 1
            start += piece.shape[1]
        return last


def pedalboard_stage(board, sample_rate: int, num_channels: int = 2,
                     max_tail_seconds: float = DEFAULT_TAIL_SECONDS) -> PedalboardStage:  # fmt: skip
    """A user's ``pedalboard.Pedalboard`` (or a single plugin) as a streamed stage of an effect chain."""
    if isinstance(board, pedalboard.Plugin) and not isinstance(board, pedalboard.Pedalboard):
        board = pedalboard.Pedalboard([board])
    if not isinstance(board, pedalboard.Pedalboard):
        raise InputError(f"a stem's effects must be a pedalboard.Pedalboard, not {type(board).__name__}")
    return PedalboardStage(board, sample_rate, num_channels, max_tail_seconds)


@functools.cache
def streams_in_blocks(kind: str) -> bool:
    """Whether pedalboard streams this plugin class with ``reset=False`` exactly as it processes a
    whole buffer. Only the plugins it primes with silence (:data:`PRIMED_PLUGINS`) are in doubt; they
    are tried once per process on 2.5 s of noise (about 0.3 s of work)."""
    if kind not in PRIMED_PLUGINS or not isinstance(getattr(pedalboard, kind, None), type):
        return True
    sample_rate = 44100
    noise = np.random.default_rng(0).standard_normal((2, int(2.5 * sample_rate))).astype(np.float32) * 0.1
    whole = pedalboard.Pedalboard([getattr(pedalboard, kind)()])(noise, sample_rate)
    board = pedalboard.Pedalboard([getattr(pedalboard, kind)()])
    pieces, position = [], 0
    while position < noise.shape[1] or sum(p.shape[1] for p in pieces) < noise.shape[1]:
        block = noise[:, position : position + BLOCK_SAMPLES]
        block = np.pad(block, ((0, 0), (0, BLOCK_SAMPLES - block.shape[1])))
        pieces.append(board(block, sample_rate, buffer_size=BLOCK_SAMPLES, reset=False))
        position += BLOCK_SAMPLES
        if position > 4 * noise.shape[1]:
            return False
    streamed = np.concatenate(pieces, axis=1)[:, : noise.shape[1]]
    return bool(np.allclose(streamed, whole, atol=1e-5))


# ---------------------------------------------------------------------------------------------------
# Builders for the effect framework


def _label(effect: Effect) -> str:
    return Path(effect.plugin).name if is_external_name(effect.plugin) else effect.plugin


def _build(effect: Effect, context: StemContext) -> Stage:
    plugin = plugin_from_effect(effect, context.sample_rate, context.base_folder)
    board = pedalboard.Pedalboard([plugin])
    return PedalboardStage(
        board, context.sample_rate, context.num_channels, label=f"{_label(effect)} on {context.name}"
    )


def find_builder(name: str) -> Callable[[Effect, StemContext], Stage] | None:
    """The builder of a pedalboard plugin's class name or a plugin file's path; None for names that are
    neither (raises InputError for a pedalboard class that is not an effect a chain can hold)."""
    if is_external_name(name):
        return _build
    if name in PLUGINS:
        _builtin_class(name)  # an older pedalboard without it says so here
        return _build
    cls = getattr(pedalboard, name, None)
    if isinstance(cls, type) and issubclass(cls, pedalboard.Plugin):
        if name in NOT_EFFECTS:
            raise InputError(f"{name} is not an effect of a chain: put its plugins in the chain one after another")
        supported = ", ".join(supported_plugins())
        raise InputError(f"pedalboard's {name} is not supported in effect chains; use one of {supported}")
    return None
