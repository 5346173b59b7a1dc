"""What a separation does to a sequencer, decided without bpy: channels, file paths, the recipe.

The Blender layer gathers plain values from the scene (strips as :class:`StripSpan`, the .blend's
path), calls these functions and applies what they return; all decisions live here and are tested
without Blender.

A separation of one movie strip is recorded as a :class:`Recipe` (JSON in the movie strip's custom
property ``pixelsep``): the clip (path and sha256), the model (id and checksum), each source (name,
clicks in the movie's own pixels, gain, the sound strip made for it) and the residual, plus the
sound strips that were muted and whether they were muted before, so that removing the separation
puts the scene back exactly (those strips are tagged too, :func:`muted_tag`). Each stem strip is tagged with the recipe's key and its source
(:func:`stem_tag`), so that it is found again after the user renames it (:func:`locate_stems`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

RECIPE_PROPERTY = "pixelsep"
STRIP_PROPERTY = "pixelsep_source"  # on a stem strip: see stem_tag
MUTED_PROPERTY = "pixelsep_muted"  # on a sound strip muted for a separation: see muted_tag
RECIPE_VERSION = 1
STEM_FOLDER = "pixelsep"
MAX_CHANNEL = 128  # Blender's sequencer has channels 1..128


@dataclass(frozen=True)
class StripSpan:
    """Where a strip sits: its channel and the frames it covers, ``[start, end)``."""

    name: str
    channel: int
    start: int
    end: int


@dataclass
class Click:
    """A point (``x1``/``y1`` None) or a box in the movie's pixels (origin top-left), at ``time_seconds``."""

    x: float
    y: float
    time_seconds: float
    x1: float | None = None
    y1: float | None = None


@dataclass
class SourceEntry:
    name: str
    clicks: list[Click]
    gain: float = 1.0
    strip: str = ""  # the sound strip that plays it


@dataclass
class Recipe:
    clip: str  # the movie file, absolute
    clip_sha256: str
    model_id: str
    model_checksum: str
    sources: list[SourceEntry] = field(default_factory=list)
    residual_strip: str = ""
    muted: dict[str, bool] = field(default_factory=dict)  # sound strip -> its mute before separating
    revision: int = 0  # renders so far: each render writes new stem files
    version: int = RECIPE_VERSION
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # names this separation in its stems' tags

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        data = json.loads(text)
        if data.get("version") != RECIPE_VERSION:
            raise ValueError(f"pixelsep recipe version {data.get('version')} is not {RECIPE_VERSION}")
        sources = [
            SourceEntry(s["name"], [Click(**c) for c in s["clicks"]], float(s["gain"]), s["strip"])
            for s in data["sources"]
        ]
        return cls(data["clip"], data["clip_sha256"], data["model_id"], data["model_checksum"], sources,
                   data["residual_strip"], dict(data["muted"]), int(data["revision"]), data["version"],
                   data.get("key", ""))  # fmt: skip

    def source(self, name: str) -> SourceEntry | None:
        return next((s for s in self.sources if s.name == name), None)


def stem_tag(recipe: Recipe, movie_strip: str, source: str | None) -> str:
    """The tag (custom property ``STRIP_PROPERTY``) of the strip that plays ``source`` (None: the residual)."""
    return json.dumps({"recipe": recipe.key, "movie": movie_strip, "source": source}, sort_keys=True)


def muted_tag(recipe: Recipe, mute_before: bool) -> str:
    """The tag (custom property ``MUTED_PROPERTY``) of a sound strip the separation muted."""
    return json.dumps({"recipe": recipe.key, "mute_before": bool(mute_before)}, sort_keys=True)


def mute_before(recipe: Recipe, tag: str) -> bool | None:
    """Whether a strip carrying ``tag`` was muted before ``recipe`` muted it; None if not its tag."""
    try:
        data = json.loads(tag)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not recipe.key or data.get("recipe") != recipe.key:
        return None
    return bool(data.get("mute_before"))


def locate_stems(recipe: Recipe, tagged: Sequence[tuple[str, str]], names: Collection[str]) -> None:
    """Point ``recipe`` at its stem strips as the scene has them now.

    Users rename strips (and duplicate them): a stem strip is known by its tag, this recipe's key
    and the source, not by its name. ``tagged``: (strip name, tag) for every strip that has a tag;
    ``names``: every strip's name. Where several strips carry one source's tag (a duplicate), the
    one the recipe names stays. An entry whose strip is gone gets ``""``."""
    found: dict[str | None, list[str]] = {}
    for strip_name, tag in tagged:
        try:
            data = json.loads(tag)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict) and recipe.key and data.get("recipe") == recipe.key:
            found.setdefault(data.get("source"), []).append(strip_name)

    def where(source: str | None, recorded: str) -> str:
        candidates = found.get(source, [])
        if recorded in candidates or (not candidates and not recipe.key and recorded in names):  # untagged: by name
            return recorded
        return candidates[0] if candidates else ""

    for entry in recipe.sources:
        entry.strip = where(entry.name, entry.strip)
    recipe.residual_strip = where(None, recipe.residual_strip)


def free_channels(occupied: Sequence[StripSpan], start: int, end: int, count: int, lowest: int) -> list[int]:
    """``count`` channels from ``lowest`` up with no strip overlapping frames ``[start, end)``.

    Raises ValueError when the sequencer runs out of channels."""
    busy = {s.channel for s in occupied if s.start < end and start < s.end}
    channels = [c for c in range(max(1, lowest), MAX_CHANNEL + 1) if c not in busy][:count]
    if len(channels) < count:
        raise ValueError(f"no {count} free sequencer channels above channel {lowest} for frames {start}-{end}")
    return channels


def picture_seconds(frame: float, strip_start: float, movie_fps: float) -> float:
    """The movie's own time of the picture a movie strip shows at scene ``frame``.

    Blender shows a movie frame by frame, whatever the scene's frame rate: at scene frame ``f`` the
    strip shows the file's frame ``f - strip_start``, which is ``(f - strip_start) / movie_fps``
    seconds into the movie."""
    if movie_fps <= 0:
        raise ValueError(f"a movie's frame rate must be positive, not {movie_fps}")
    return max(0.0, (frame - strip_start) / movie_fps)


def stem_span(strip_start: int, final_start: int, final_end: int, scene_fps: float, movie_fps: float) -> tuple[int, int]:
    """The frames a stem's sound strip covers, ``(start, end)``, for a movie strip that starts at
    ``strip_start`` and is shown on ``[final_start, final_end)``.

    A stem plays where the movie's own sound plays: from the strip's start, in real time. When the
    scene's frame rate is the movie's, that is the movie strip's span; when it differs, Blender
    still shows the movie frame by frame (a 24 fps movie in a 30 fps scene is over in 8 s of 10),
    while sound strips, the movie's own included, keep real time, so the trims are carried over as
    the same movie time and the stem lasts as long as the sound."""
    if scene_fps <= 0 or movie_fps <= 0:
        raise ValueError("frame rates must be positive")
    ratio = scene_fps / movie_fps
    return strip_start + round((final_start - strip_start) * ratio), strip_start + round((final_end - strip_start) * ratio)


def safe_name(name: str) -> str:
    """A source name as a file name: letters, digits, '-', '_' and '.' kept, the rest '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return cleaned or "source"


def stem_folder(blend_path: str, clip_sha256: str, movie_strip: str, temp_root: Path) -> tuple[Path, str]:
    """Where a movie strip's stems go: (absolute folder, the prefix Blender stores for its files).

    Next to a saved .blend in ``//pixelsep/<strip>-<hash>/`` (Blender's relative path, so the
    project can move); for an unsaved file in ``temp_root`` (absolute) until it is saved."""
    name = f"{safe_name(movie_strip)}-{clip_sha256[:12]}"
    if blend_path:
        folder = Path(blend_path).parent / STEM_FOLDER / name
        return folder, f"//{STEM_FOLDER}/{name}/"
    folder = Path(temp_root) / name
    return folder, str(folder) + "/"


def relocate_after_save(stored_path: str, temp_root: Path, blend_path: str) -> tuple[Path, Path, str] | None:
    """A stem stored under ``temp_root`` when the .blend is first saved: (from, to, new stored path),
    or None when the stem is already relative (nothing to move)."""
    if stored_path.startswith("//"):
        return None
    source = Path(stored_path)
    try:
        relative = source.relative_to(Path(temp_root))
    except ValueError:
        return None
    target = Path(blend_path).parent / STEM_FOLDER / relative
    return source, target, f"//{STEM_FOLDER}/{relative.as_posix()}"


def stem_prefix(movie_strip: str, revision: int) -> str:
    """The file-name prefix of one render's stems: ``<strip>.r<revision>`` (+ ``.<source>.wav``)."""
    return f"{safe_name(movie_strip)}.r{revision}"


def strip_name(movie_strip: str, source: str) -> str:
    """The sound strip's name for a source (Blender names are at most 63 bytes)."""
    return f"{movie_strip}.{source}"[:63]
