"""What a separation does to a sequencer, decided without bpy: channels, file paths, the edit.

The Blender layer gathers plain values from the scene (strips as :class:`StripSpan`, the .blend's
path), calls these functions and applies what they return; all decisions live here and are tested
without Blender.

A separation of one movie strip is an :class:`Edit`: the engine's recipe document
(:mod:`pixelsep_plugin.recipe`, the same JSON every host reads; custom property ``pixelsep`` of the
movie strip, the clip's path absolute) and the Blender host's own bookkeeping beside it (property
``pixelsep_blender``): the sound strip that plays each source and the residual, the sound strips
that were muted and whether they were muted before (so that removing the separation puts the scene
back exactly; those strips are tagged too, :func:`muted_tag`), the render count and a key. Each
stem strip is tagged with the key and its source (:func:`stem_tag`), so that it is found again
after the user renames it (:func:`locate_stems`). In the scene, a stem strip's volume and mute are
the source's gain and mute: :func:`recipe_as_played` reads them back into the recipe that is saved,
rendered or exported.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.errors import InputError

RECIPE_PROPERTY = "pixelsep"  # on the movie strip: the engine's recipe document
HOST_PROPERTY = "pixelsep_blender"  # on the movie strip: this host's bookkeeping
STRIP_PROPERTY = "pixelsep_source"  # on a stem strip: see stem_tag
MUTED_PROPERTY = "pixelsep_muted"  # on a sound strip muted for a separation: see muted_tag
HOST_VERSION = 2
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
class HostState:
    """The Blender host's bookkeeping of one separation (beside the recipe, never inside it)."""

    strips: dict[str, str] = field(default_factory=dict)  # source name -> the sound strip that plays it
    residual_strip: str = ""
    muted: dict[str, bool] = field(default_factory=dict)  # sound strip -> its mute before separating
    revision: int = 0  # renders so far: each render writes new stem files
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # names this separation in its stems' tags
    version: int = HOST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HostState:
        data = json.loads(text)
        if data.get("version") != HOST_VERSION:
            raise ValueError(f"pixelsep strip data version {data.get('version')} is not {HOST_VERSION}")
        return cls(dict(data["strips"]), data["residual_strip"], dict(data["muted"]), int(data["revision"]),
                   data.get("key", ""), HOST_VERSION)  # fmt: skip


@dataclass
class Edit:
    """One movie strip's separation: the engine's recipe and this host's state."""

    recipe: rcp.Recipe
    state: HostState = field(default_factory=HostState)

    def stored(self) -> tuple[str, str]:
        """(recipe JSON, host JSON) for the movie strip's two properties."""
        return self.recipe.to_json(), self.state.to_json()


def read_edit(recipe_text: str, host_text: str | None) -> Edit:
    """An :class:`Edit` from the movie strip's properties (the recipe's clip path is absolute there).

    A movie strip separated by an earlier version of the extension holds one JSON with the clicks and
    the strips together (``"clicks"`` per source, a linear ``gain``): it is read into the same Edit."""
    data = json.loads(recipe_text)
    if data.get("format") == rcp.FORMAT:
        recipe = rcp.loads(recipe_text, base=Path("/"))
        return Edit(recipe, HostState.from_json(host_text) if host_text else HostState())
    if data.get("version") != 1 or "clip_sha256" not in data:
        raise ValueError(f"pixelsep recipe version {data.get('version')} is not one this extension reads")
    from pixelsep_plugin import media

    info = media.probe(data["clip"])
    clip = rcp.ClipRef(Path(data["clip"]), data["clip_sha256"], info.duration_seconds, info.sample_rate,
                       info.channel_layout, info.num_audio_samples, info.width, info.height,
                       info.frame_rate_fraction, info.rotation_degrees, info.audio_offset_seconds)  # fmt: skip
    sources = [
        rcp.SourceEdit(
            s["name"],
            [rcp.PartRef(c["x"], c["y"], c["time_seconds"], c.get("x1"), c.get("y1")) for c in s["clicks"]],
            gain_db(float(s["gain"])),
        )  # fmt: skip
        for s in data["sources"]
    ]
    state = HostState({s["name"]: s["strip"] for s in data["sources"]}, data["residual_strip"], dict(data["muted"]),
                      int(data["revision"]), data.get("key", ""))  # fmt: skip
    return Edit(rcp.Recipe(clip, rcp.ModelRef(data["model_id"], data["model_checksum"]), sources), state)


def gain_db(volume: float) -> float:
    """A strip volume (linear) as a recipe gain in dB, within the recipe's range."""
    low, high = rcp.GAIN_DB_RANGE
    return min(high, max(low, 20 * math.log10(volume))) if volume > 0 else low


def add_click(edit: Edit, name: str, x: float, y: float, seconds: float, x1: float | None = None,
              y1: float | None = None) -> str:  # fmt: skip
    """Add a click (a point, or a box with ``x1``, ``y1``) in the movie's pixels at ``seconds`` to the
    source ``name`` (a new source when there is none; ``""``: the next of source1, source2, ...)."""
    name = name or next(f"source{i}" for i in range(1, 1000) if edit.recipe.source(f"source{i}") is None)
    part = rcp.PartRef(float(x), float(y), float(seconds), x1, y1)
    entry = edit.recipe.source(name)
    if entry is None:
        edit.recipe.sources.append(rcp.SourceEdit(rcp.check_name(name), [part]))
    else:
        entry.parts.append(part)
    edit.recipe.validate()
    return name


@dataclass(frozen=True)
class StripMix:
    """What a stem strip plays at: its volume (linear; keyframed volumes are read where the caller reads them) and mute."""

    volume: float
    mute: bool


def recipe_as_played(edit: Edit, mixes: Mapping[str, StripMix]) -> rcp.Recipe:
    """The recipe with each source's (and the residual's) gain and mute as its strip plays them.

    ``mixes``: strip name -> StripMix for the strips found in the scene; a source whose strip is gone keeps its
    recipe's values. Solos made with the panel's Solo button are mutes in the scene and stay mutes."""
    recipe = replace(edit.recipe, sources=[replace(s) for s in edit.recipe.sources],
                     residual=replace(edit.recipe.residual), output=replace(edit.recipe.output))  # fmt: skip
    for source in recipe.sources:
        mix = mixes.get(edit.state.strips.get(source.name, ""))
        if mix is not None:
            source.gain_db, source.mute, source.solo = gain_db(mix.volume), mix.mute or mix.volume <= 0, False
    mix = mixes.get(edit.state.residual_strip)
    if mix is not None:
        recipe.residual.gain_db, recipe.residual.mute = gain_db(mix.volume), mix.mute or mix.volume <= 0
    return recipe.validate()


def adopt(edit: Edit | None, loaded: rcp.Recipe, clip: Path, clip_sha256: str) -> Edit:
    """A recipe opened from a file, put on a movie strip that plays ``clip``: its sources and gains
    replace the strip's (its stem strips are kept and get the new sound). Raises InputError when
    the recipe was made on another clip."""
    if loaded.clip.sha256 != clip_sha256:
        raise InputError(
            f"this recipe was made on another clip ({loaded.clip.path.name}), not {clip.name}: select its movie strip"
        )
    recipe = replace(loaded, clip=replace(loaded.clip, path=Path(clip)))
    if edit is None:
        return Edit(recipe)
    return Edit(recipe, edit.state)


def stem_recipe(recipe: rcp.Recipe, movie_strip: str, revision: int) -> rcp.Recipe:
    """The recipe as the stems of one render are written: float WAV, the residual, file names
    ``<strip>.r<revision>.<source>.wav`` (and ``.fx.wav`` for a source with effects)."""
    output = replace(recipe.output, prefix=stem_prefix(movie_strip, revision), format="wav", residual=True)
    return replace(recipe, output=output)


def chain_summary(effects: Sequence[rcp.Effect]) -> str:
    """A source's effect chain in a line for the panel: "swap to Trumpet, Reverb, Compressor" ("" when none)."""
    names = []
    for effect in effects:
        if effect.plugin == "pixelsep.Swap":
            target = effect.parameters.get("program_name") or effect.parameters.get("program", "?")
            names.append(f"swap to {target}")
        else:
            names.append(
                Path(effect.plugin).stem
                if effect.plugin.lower().endswith(".vst3")
                else effect.plugin.removeprefix("pixelsep.")
            )
    return ", ".join(names)


def stem_tag(edit: Edit, movie_strip: str, source: str | None) -> str:
    """The tag (custom property ``STRIP_PROPERTY``) of the strip that plays ``source`` (None: the residual)."""
    return json.dumps({"recipe": edit.state.key, "movie": movie_strip, "source": source}, sort_keys=True)


def muted_tag(edit: Edit, mute_before: bool) -> str:
    """The tag (custom property ``MUTED_PROPERTY``) of a sound strip the separation muted."""
    return json.dumps({"recipe": edit.state.key, "mute_before": bool(mute_before)}, sort_keys=True)


def mute_before(edit: Edit, tag: str) -> bool | None:
    """Whether a strip carrying ``tag`` was muted before ``edit`` muted it; None if not its tag."""
    try:
        data = json.loads(tag)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not edit.state.key or data.get("recipe") != edit.state.key:
        return None
    return bool(data.get("mute_before"))


def locate_stems(edit: Edit, tagged: Sequence[tuple[str, str]], names: Collection[str]) -> None:
    """Point ``edit`` at its stem strips as the scene has them now.

    Users rename strips (and duplicate them): a stem strip is known by its tag, this edit's key
    and the source, not by its name. ``tagged``: (strip name, tag) for every strip that has a tag;
    ``names``: every strip's name. Where several strips carry one source's tag (a duplicate), the
    one the edit names stays. An entry whose strip is gone gets ``""``."""
    state = edit.state
    found: dict[str | None, list[str]] = {}
    for strip_name, tag in tagged:
        try:
            data = json.loads(tag)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict) and state.key and data.get("recipe") == state.key:
            found.setdefault(data.get("source"), []).append(strip_name)

    def where(source: str | None, recorded: str) -> str:
        candidates = found.get(source, [])
        if recorded in candidates or (not candidates and not state.key and recorded in names):  # untagged: by name
            return recorded
        return candidates[0] if candidates else ""

    for entry in edit.recipe.sources:
        state.strips[entry.name] = where(entry.name, state.strips.get(entry.name, ""))
    state.residual_strip = where(None, state.residual_strip)


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


def stem_span(
    strip_start: int, final_start: int, final_end: int, scene_fps: float, movie_fps: float
) -> tuple[int, int]:
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
    return strip_start + round((final_start - strip_start) * ratio), strip_start + round(
        (final_end - strip_start) * ratio
    )


def safe_name(name: str) -> str:
    """A source name as a file name: letters, digits, '-', '_' and '.' kept, the rest '_' (at most 48 characters)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._-")[:48].rstrip("._-")
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


SPAN_BEFORE_SECONDS = 2.0  # a click renders this much before the playhead first...
SPAN_AFTER_SECONDS = 8.0  # ...and this much after it, then the whole stems in the background


def first_span(
    playhead_seconds: float,
    duration_seconds: float,
    before_seconds: float = SPAN_BEFORE_SECONDS,
    after_seconds: float = SPAN_AFTER_SECONDS,
) -> tuple[float, float]:
    """The span of the clip, ``(start, end)`` seconds, whose stems a click renders first, so the user
    hears them at once: ``before_seconds`` before the playhead to ``after_seconds`` after it, moved
    inside the clip with its length kept where the clip is long enough (a click near the end still
    gets ``before + after`` seconds), cut to the clip where it is shorter."""
    if not duration_seconds > 0:
        raise ValueError("the clip's duration must be positive")
    if before_seconds < 0 or after_seconds < 0 or before_seconds + after_seconds <= 0:
        raise ValueError("the span around the playhead must have a positive length")
    length = before_seconds + after_seconds
    start = max(0.0, min(playhead_seconds - before_seconds, duration_seconds - length))
    return start, min(duration_seconds, start + length)


def span_file(stem_file: Path) -> Path:
    """The file that stands in for ``stem_file`` until it is rendered: ``<stem name>.span.wav``
    beside it (``duet.r2.violin.wav`` -> ``duet.r2.violin.span.wav``)."""
    return Path(stem_file).with_name(Path(stem_file).stem + ".span.wav")


def stem_files(recipe: rcp.Recipe, movie_strip: str, revision: int, folder: Path) -> dict[str, Path]:
    """The file each source (by name) and ``"residual"`` will play after render ``revision``: the
    source's stem, or its processed stem (``.fx.wav``) where it has effects — the names
    :func:`stem_recipe`'s render writes."""
    prefix = stem_prefix(movie_strip, revision)
    files = {}
    for source in recipe.sources:
        suffix = ".fx.wav" if source.effects else ".wav"
        files[source.name] = Path(folder) / f"{prefix}.{source.name}{suffix}"
    files["residual"] = Path(folder) / f"{prefix}.residual{'.fx.wav' if recipe.residual.effects else '.wav'}"
    return files


def is_current_render(edit: Edit | None, revision: int) -> bool:
    """Whether a render of ``revision`` that just finished in the background still belongs on the
    strips: the movie still has its edit and no later click started another render."""
    return edit is not None and edit.state.revision == revision
