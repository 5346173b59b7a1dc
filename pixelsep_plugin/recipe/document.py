"""The edit as a document: a versioned JSON recipe that every host reads and writes.

A recipe names the clip (a path relative to the recipe's own folder, its sha256, duration and
streams), the model (id and sha256), the sources (a name, the parts clicked, a gain in dB, mute,
solo and an effect chain), the residual (gain, mute, effect chain) and the output settings. Stems,
remixes, videos and timelines are derived from it and can be thrown away and made again; the clip
is never written. Its JSON Schema is ``recipe-1.schema.json`` beside this module.

Reading is strict: every error is one line that names the field and says what to do. Unknown
fields, unknown versions, names that would escape the output folder and unbounded sizes are
refused. In memory the clip's path is absolute; :func:`save` writes it relative to the recipe
when it can.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pixelsep_plugin.errors import InputError

FORMAT = "pixelsep-recipe"
VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("recipe-1.schema.json")

AUDIO_FORMATS = ("wav", "flac", "mp3", "opus", "aac")
HIGH_BAND_MODES = ("extend", "residual")
PEAK_MODES = ("auto", "limit", "warn")
TAIL_MODES = ("cut", "ring")  # auto: limit where the format would clip, keep in float WAV

MAX_RECIPE_BYTES = 1 << 20
MAX_SOURCES = 64
MAX_PARTS = 256
MAX_EFFECTS = 32
MAX_NAME_CHARS = 64
MAX_PATH_CHARS = 4096
MAX_TEXT_CHARS = 256
MAX_STATE_CHARS = 512 * 1024  # a VST3 plugin's saved state, base64
GAIN_DB_RANGE = (-120.0, 36.0)
MAX_SECONDS = 30 * 24 * 3600.0
MAX_PIXELS = 1 << 16
RESERVED_NAMES = ("residual", "remix", "original")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]*$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_NUMBER_LIST = re.compile(r"\[\s*([-+0-9.eE,\s]+?)\s*\]")


@dataclass
class ClipRef:
    """The clip a recipe edits. ``path`` is absolute in memory.

    duration_seconds: the container's duration. sample_rate, channel_layout, num_samples: the first
    audio stream (samples per channel). audio_offset_seconds: where that stream starts on the
    picture's clock. width, height: display pixels; frame_rate: exact, e.g. "30000/1001".
    """

    path: Path
    sha256: str
    duration_seconds: float
    sample_rate: int
    channel_layout: str
    num_samples: int
    width: int
    height: int
    frame_rate: str
    rotation_degrees: int = 0
    audio_offset_seconds: float = 0.0


@dataclass
class ModelRef:
    id: str
    sha256: str


@dataclass
class PartRef:
    """A point (``x1``/``y1`` None) or a box in the clip's display pixels (origin top-left) at ``time_seconds``."""

    x: float
    y: float
    time_seconds: float
    x1: float | None = None
    y1: float | None = None

    @property
    def is_box(self) -> bool:
        return self.x1 is not None


@dataclass
class Effect:
    """One plugin of an effect chain: its name (a pedalboard plugin's class, a VST3 file, or a
    ``pixelsep.*`` processor), its parameters, and for a VST3 plugin its saved state (base64)."""

    plugin: str
    parameters: dict[str, Any] = field(default_factory=dict)
    state: str | None = None


@dataclass
class SourceEdit:
    name: str
    parts: list[PartRef]
    gain_db: float = 0.0
    mute: bool = False
    solo: bool = False
    effects: list[Effect] = field(default_factory=list)


@dataclass
class ResidualEdit:
    gain_db: float = 0.0
    mute: bool = False
    effects: list[Effect] = field(default_factory=list)


@dataclass
class OutputSettings:
    """Where and how renders go. ``folder`` is relative to the recipe's folder and stays inside it."""

    folder: str = "stems"
    prefix: str = ""  # "" = the clip's file name without its suffix
    format: str = "wav"
    high_band: str = "extend"
    residual: bool = True
    peaks: str = "auto"
    tail: str = "cut"  # effect tails: "cut" at the clip's end, or "ring" on past it


@dataclass
class Recipe:
    clip: ClipRef
    model: ModelRef
    sources: list[SourceEdit] = field(default_factory=list)
    residual: ResidualEdit = field(default_factory=ResidualEdit)
    output: OutputSettings = field(default_factory=OutputSettings)
    # the folder of the file it was read from or saved to (not part of the document): relative paths in
    # effect parameters (a swap's MIDI file) are resolved against it; None: the clip's folder
    folder: Path | None = field(default=None, compare=False)

    @property
    def base_folder(self) -> Path:
        return self.folder if self.folder is not None else self.clip.path.parent

    def source(self, name: str) -> SourceEdit | None:
        return next((s for s in self.sources if s.name == name), None)

    @property
    def prefix(self) -> str:
        return self.output.prefix or self.clip.path.stem

    def validate(self) -> Recipe:
        """Check every field as reading does (hosts edit recipes in memory); returns self."""
        from_dict(to_dict(self), base=self.clip.path.parent)
        return self

    def to_json(self, base: Path | None = None) -> str:
        """The document as indented JSON, lists of numbers on one line."""
        text = json.dumps(to_dict(self, base), indent=2)
        return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m[1].split(",")) + "]", text) + "\n"


# ---------------------------------------------------------------------------------------------------
# Writing


def _number(value: float) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _clip_path_text(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` with '/' separators where possible, else absolute."""
    if base is not None:
        try:
            return PurePosixPath(*Path(os.path.relpath(path, base)).parts).as_posix()
        except ValueError:  # another drive
            pass
    return str(path)


def _effects_out(effects: list[Effect]) -> list[dict]:
    return [
        {"plugin": e.plugin, "parameters": dict(e.parameters), **({"state": e.state} if e.state is not None else {})}
        for e in effects
    ]


def to_dict(recipe: Recipe, base: Path | None = None) -> dict:
    """The document as JSON values; the clip's path relative to ``base`` (None: as it is)."""
    clip = recipe.clip
    return {
        "format": FORMAT,
        "version": VERSION,
        "clip": {
            "path": _clip_path_text(clip.path, base),
            "sha256": clip.sha256,
            "duration_seconds": _number(clip.duration_seconds),
            "audio": {
                "sample_rate": clip.sample_rate,
                "channel_layout": clip.channel_layout,
                "num_samples": clip.num_samples,
                "offset_seconds": _number(clip.audio_offset_seconds),
            },
            "video": {
                "width": clip.width,
                "height": clip.height,
                "frame_rate": clip.frame_rate,
                "rotation_degrees": clip.rotation_degrees,
            },
        },
        "model": {"id": recipe.model.id, "sha256": recipe.model.sha256},
        "sources": [
            {
                "name": s.name,
                "parts": [
                    {
                        "box": [_number(p.x), _number(p.y), _number(p.x1), _number(p.y1)],
                        "time_seconds": _number(p.time_seconds),
                    }
                    if p.is_box
                    else {"point": [_number(p.x), _number(p.y)], "time_seconds": _number(p.time_seconds)}
                    for p in s.parts
                ],
                "gain_db": _number(s.gain_db),
                "mute": s.mute,
                "solo": s.solo,
                "effects": _effects_out(s.effects),
            }
            for s in recipe.sources
        ],
        "residual": {
            "gain_db": _number(recipe.residual.gain_db),
            "mute": recipe.residual.mute,
            "effects": _effects_out(recipe.residual.effects),
        },
        "output": {
            "folder": recipe.output.folder,
            "prefix": recipe.output.prefix,
            "format": recipe.output.format,
            "high_band": recipe.output.high_band,
            "residual": recipe.output.residual,
            "peaks": recipe.output.peaks,
            "tail": recipe.output.tail,
        },
    }


# ---------------------------------------------------------------------------------------------------
# Reading


class _Reader:
    """Typed access to one JSON object, naming the field in every error."""

    def __init__(self, data: Any, where: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()):
        if not isinstance(data, dict):
            raise InputError(f"recipe: {where} must be an object")
        unknown = sorted(set(data) - set(keys) - set(optional))
        if unknown:
            raise InputError(
                f"recipe: unknown field {where}.{unknown[0]}: remove it (this pixelsep reads version {VERSION})"
            )
        missing = [k for k in keys if k not in data]
        if missing:
            raise InputError(f"recipe: {where}.{missing[0]} is missing")
        self.data, self.where = data, where

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, limit: int = MAX_TEXT_CHARS, allow_empty: bool = False) -> str:
        value = self.data[key]
        if not isinstance(value, str) or (not value and not allow_empty):
            raise InputError(f"recipe: {self.name(key)} must be a non-empty string")
        if len(value) > limit or "\0" in value:
            raise InputError(f"recipe: {self.name(key)} is longer than {limit} characters or holds a NUL")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.data[key]
        if value not in choices:
            raise InputError(f"recipe: {self.name(key)} must be one of {', '.join(choices)}, not {_shown(value)}")
        return value

    def flag(self, key: str) -> bool:
        value = self.data[key]
        if not isinstance(value, bool):
            raise InputError(f"recipe: {self.name(key)} must be true or false")
        return value

    def number(self, key: str, low: float, high: float, value: Any = None, label: str | None = None) -> float:
        value = self.data[key] if value is None else value
        label = label or self.name(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"recipe: {label} must be a number")
        if not low <= value <= high:
            raise InputError(f"recipe: {label} is {value:g}, outside [{low:g}, {high:g}]")
        return float(value)

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"recipe: {self.name(key)} must be a whole number")
        if not low <= value <= high:
            raise InputError(f"recipe: {self.name(key)} is {value}, outside [{low}, {high}]")
        return value

    def array(self, key: str, limit: int) -> list:
        value = self.data[key]
        if not isinstance(value, list):
            raise InputError(f"recipe: {self.name(key)} must be a list")
        if len(value) > limit:
            raise InputError(f"recipe: {self.name(key)} has {len(value)} entries; at most {limit} are allowed")
        return value


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for an error line, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_name(name: str, what: str = "source name") -> str:
    """A source name usable in file names, track titles and command lines; raises InputError."""
    if (
        not isinstance(name, str)
        or not NAME_PATTERN.match(name)
        or len(name) > MAX_NAME_CHARS
        or name.endswith((" ", "."))
    ):
        raise InputError(
            f"{what} {_shown(name)} is not usable: use up to {MAX_NAME_CHARS} letters, digits, spaces, '.', '_', '+' or '-' "
            "(starting with a letter or digit)"
        )
    if name.lower() in RESERVED_NAMES:
        raise InputError(f"{what} {_shown(name)} is reserved: choose another name")
    return name


def check_relative_folder(text: str, what: str) -> str:
    """A relative folder that stays inside its base: no absolute path, no '..', no drive."""
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text or PurePosixPath(text).is_absolute() or PureWindowsPath(text).drive or PureWindowsPath(text).root:
        raise InputError(f"recipe: {what} {_shown(text)} must be a folder relative to the recipe")
    if ".." in parts:
        raise InputError(f"recipe: {what} {_shown(text)} would leave the recipe's folder: remove '..'")
    return text


def _effects_in(items: list, where: str) -> list[Effect]:
    effects = []
    for i, item in enumerate(items):
        reader = _Reader(item, f"{where}[{i}]", ("plugin", "parameters"), ("state",))
        parameters = reader.data["parameters"]
        if not isinstance(parameters, dict) or len(parameters) > 256:
            raise InputError(f"recipe: {where}[{i}].parameters must be an object of at most 256 entries")
        state = reader.text("state", MAX_STATE_CHARS) if reader.has("state") else None
        if state is not None and not re.fullmatch(r"[A-Za-z0-9+/=\s]*", state):
            raise InputError(f"recipe: {where}[{i}].state must be base64 text")
        effects.append(Effect(reader.text("plugin", MAX_PATH_CHARS), dict(parameters), state))
    return effects


def _part_in(item: Any, where: str, width: int, height: int, duration: float) -> PartRef:
    kind = "box" if isinstance(item, dict) and "box" in item else "point"
    reader = _Reader(item, where, (kind, "time_seconds"))
    values = reader.data[kind]
    count = 4 if kind == "box" else 2
    if not isinstance(values, list) or len(values) != count:
        raise InputError(f"recipe: {where}.{kind} must be a list of {count} numbers")
    coords = [
        reader.number(kind, 0.0, float(width if j % 2 == 0 else height), value=v, label=f"{where}.{kind}[{j}]")
        for j, v in enumerate(values)
    ]
    time_seconds = reader.number("time_seconds", 0.0, duration)
    if kind == "point":
        if coords[0] >= width or coords[1] >= height:
            raise InputError(f"recipe: {where}.point {coords[0]:g},{coords[1]:g} is outside the {width}x{height} frame")
        return PartRef(coords[0], coords[1], time_seconds)
    if coords[2] <= coords[0] or coords[3] <= coords[1]:
        raise InputError(f"recipe: {where}.box is empty: give [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
    return PartRef(coords[0], coords[1], time_seconds, coords[2], coords[3])


def from_dict(data: Any, base: Path) -> Recipe:
    """Read and check a recipe document; relative clip paths are resolved against ``base``."""
    if not isinstance(data, dict):
        raise InputError("recipe: the document must be a JSON object")
    if data.get("format") != FORMAT:
        raise InputError(f"recipe: not a pixelsep recipe (its format is {_shown(data.get('format'))}, not {FORMAT!r})")
    version = data.get("version")
    if version != VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            raise InputError(f"recipe version {version} is newer than this pixelsep reads ({VERSION}): update pixelsep")
        raise InputError(f"recipe version {_shown(version)} is not one this pixelsep reads ({VERSION})")
    top = _Reader(data, "", ("format", "version", "clip", "model", "sources", "residual", "output"))

    clip_r = _Reader(top.data["clip"], "clip", ("path", "sha256", "duration_seconds", "audio", "video"))
    sha = clip_r.text("sha256", 64)
    if not SHA256_PATTERN.match(sha):
        raise InputError("recipe: clip.sha256 must be 64 lowercase hexadecimal digits")
    audio_r = _Reader(
        clip_r.data["audio"], "clip.audio", ("sample_rate", "channel_layout", "num_samples", "offset_seconds")
    )
    video_r = _Reader(clip_r.data["video"], "clip.video", ("width", "height", "frame_rate", "rotation_degrees"))
    frame_rate = video_r.text("frame_rate", 32)
    match = re.fullmatch(r"([1-9][0-9]{0,9})/([1-9][0-9]{0,9})", frame_rate)
    if not match or not 0 < int(match[1]) / int(match[2]) <= 1000:
        raise InputError(f"recipe: clip.video.frame_rate must be a fraction like 30000/1001, not {_shown(frame_rate)}")
    rotation = video_r.integer("rotation_degrees", 0, 270)
    if rotation % 90:
        raise InputError("recipe: clip.video.rotation_degrees must be 0, 90, 180 or 270")
    clip_text = clip_r.text("path", MAX_PATH_CHARS)
    clip = ClipRef(
        path=Path(os.path.normpath(base / Path(clip_text))),
        sha256=sha,
        duration_seconds=clip_r.number("duration_seconds", 0.0, MAX_SECONDS),
        sample_rate=audio_r.integer("sample_rate", 1, 1_536_000),
        channel_layout=audio_r.text("channel_layout", 64),
        num_samples=audio_r.integer("num_samples", 0, 1 << 44),
        width=video_r.integer("width", 1, MAX_PIXELS),
        height=video_r.integer("height", 1, MAX_PIXELS),
        frame_rate=frame_rate,
        rotation_degrees=rotation,
        audio_offset_seconds=audio_r.number("offset_seconds", -MAX_SECONDS, MAX_SECONDS),
    )

    model_r = _Reader(top.data["model"], "model", ("id", "sha256"))
    model = ModelRef(model_r.text("id", MAX_NAME_CHARS), model_r.text("sha256", 64))
    if not SHA256_PATTERN.match(model.sha256):
        raise InputError("recipe: model.sha256 must be 64 lowercase hexadecimal digits")

    sources = []
    for i, item in enumerate(top.array("sources", MAX_SOURCES)):
        where = f"sources[{i}]"
        r = _Reader(item, where, ("name", "parts", "gain_db", "mute", "solo", "effects"))
        name = check_name(r.text("name", MAX_NAME_CHARS), f"recipe: {where}.name")
        parts = [
            _part_in(p, f"{where}.parts[{j}]", clip.width, clip.height, clip.duration_seconds)
            for j, p in enumerate(r.array("parts", MAX_PARTS))
        ]
        if not parts:
            raise InputError(f"recipe: {where} ({name}) has no part: click the performer at least once")
        sources.append(
            SourceEdit(
                name,
                parts,
                r.number("gain_db", *GAIN_DB_RANGE),
                r.flag("mute"),
                r.flag("solo"),
                _effects_in(r.array("effects", MAX_EFFECTS), f"{where}.effects"),
            )
        )
    names = [s.name.lower() for s in sources]
    duplicate = next((s.name for s, n in zip(sources, names, strict=True) if names.count(n) > 1), None)
    if duplicate:
        raise InputError(f"recipe: two sources are named {_shown(duplicate)} (names must differ, ignoring case)")

    res_r = _Reader(top.data["residual"], "residual", ("gain_db", "mute", "effects"))
    residual = ResidualEdit(
        res_r.number("gain_db", *GAIN_DB_RANGE),
        res_r.flag("mute"),
        _effects_in(res_r.array("effects", MAX_EFFECTS), "residual.effects"),
    )

    out_r = _Reader(
        top.data["output"], "output", ("folder", "prefix", "format", "high_band", "residual", "peaks"), ("tail",)
    )
    prefix = out_r.text("prefix", MAX_NAME_CHARS, allow_empty=True)
    if prefix:
        check_name(prefix, "recipe: output.prefix")
    output = OutputSettings(
        folder=check_relative_folder(out_r.text("folder", MAX_PATH_CHARS), "output.folder"),
        prefix=prefix,
        format=out_r.choice("format", AUDIO_FORMATS),
        high_band=out_r.choice("high_band", HIGH_BAND_MODES),
        residual=out_r.flag("residual"),
        peaks=out_r.choice("peaks", PEAK_MODES),
        tail=out_r.choice("tail", TAIL_MODES) if out_r.has("tail") else "cut",
    )
    return Recipe(clip, model, sources, residual, output)


def loads(text: str, base: Path) -> Recipe:
    """A recipe from JSON text; relative clip paths are resolved against ``base``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_RECIPE_BYTES:
        raise InputError(f"recipe: larger than {MAX_RECIPE_BYTES // 1024} KiB; a recipe is a small JSON file")
    try:
        data = json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(f"{name} is not allowed")))
    except (ValueError, RecursionError) as error:
        raise InputError(f"recipe: not valid JSON ({str(error).splitlines()[0]})") from None
    return from_dict(data, base)


def load(path: Path | str) -> Recipe:
    """Read a recipe file (clip paths relative to its folder). Does not look at the clip: see :func:`check_clip`."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise InputError(f"recipe {path.name} is larger than {MAX_RECIPE_BYTES // 1024} KiB: is it a recipe?")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"recipe {path} not found") from None
    except IsADirectoryError:
        raise InputError(f"recipe {path} is a folder: give the recipe's .json file") from None
    except UnicodeDecodeError:
        raise InputError(f"recipe {path.name} is not UTF-8 text: is it a recipe?") from None
    except OSError as error:
        raise InputError(f"cannot read recipe {path.name} ({error.strerror}): check the file") from None
    try:
        recipe = loads(text, path.resolve().parent)
    except InputError as error:
        raise InputError(f"{path.name}: {error}") from None
    recipe.folder = path.resolve().parent
    return recipe


def save(recipe: Recipe, path: Path | str, protect: tuple[Path, ...] = ()) -> Path:
    """Write ``recipe`` to ``path`` atomically (the clip's path relative to the recipe's folder)."""
    from pixelsep_plugin.media.encode import atomic_destination

    path = Path(path)
    if path.suffix.lower() != ".json":
        raise InputError(f"a recipe is a .json file, not {path.name}")
    recipe.validate()
    text = recipe.to_json(base=path.resolve().parent)
    with atomic_destination(path, protect=(recipe.clip.path, *protect)) as temp:
        temp.write_text(text, encoding="utf-8")
    recipe.folder = path.resolve().parent
    return path


def output_folder(recipe: Recipe, recipe_path: Path | None) -> Path:
    """The output folder: ``output.folder`` under the recipe's folder (the clip's folder without a recipe file)."""
    base = Path(recipe_path).resolve().parent if recipe_path is not None else recipe.clip.path.parent
    return base / check_relative_folder(recipe.output.folder, "output.folder")
