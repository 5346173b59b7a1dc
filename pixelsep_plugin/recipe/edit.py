"""Between recipes, clips, models and the engine: making a recipe, checking it against its clip and
model, turning its sources into engine queries and its gains, mutes and solos into linear gains."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe.document import ClipRef, ModelRef, OutputSettings, PartRef, Recipe, SourceEdit, check_name
from pixelsep_plugin.runtime.query import Box, Point, Source


def clip_ref(clip: Path | str, sha256: str | None = None) -> ClipRef:
    """What a recipe records of ``clip``: absolute path, sha256 (computed unless given) and streams."""
    from pixelsep_plugin import media
    from pixelsep_plugin.runtime.store import sha256_of_file

    path = Path(clip).resolve()
    info = media.probe(path)
    media.require_audio(info)
    media.require_video(info)
    return ClipRef(
        path=path,
        sha256=sha256 or sha256_of_file(path),
        duration_seconds=info.duration_seconds,
        sample_rate=info.sample_rate,
        channel_layout=info.channel_layout,
        num_samples=info.num_audio_samples,
        width=info.width,
        height=info.height,
        frame_rate=info.frame_rate_fraction,
        rotation_degrees=info.rotation_degrees,
        audio_offset_seconds=info.audio_offset_seconds,
    )


def parts_of(source: Source) -> list[PartRef]:
    """An engine source's parts as recipe parts (a part without a time is at 0 s)."""
    parts = []
    for part in source.parts:
        t = 0.0 if part.time_seconds is None else float(part.time_seconds)
        if isinstance(part, Box):
            parts.append(PartRef(part.x0, part.y0, t, part.x1, part.y1))
        else:
            parts.append(PartRef(part.x, part.y, t))
    return parts


def new_recipe(
    clip: ClipRef,
    model_id: str,
    model_sha256: str,
    sources: Sequence[Source] = (),
    output: OutputSettings | None = None,
    gains_db: dict[str, float] | None = None,
) -> Recipe:
    """A recipe for ``clip`` with the engine's ``sources`` (gains in dB by name; default 0)."""
    gains_db = dict(gains_db or {})
    edits = [SourceEdit(check_name(s.name), parts_of(s), float(gains_db.pop(s.name, 0.0))) for s in sources]
    recipe = Recipe(clip, ModelRef(model_id, model_sha256), edits, output=output or OutputSettings())
    if "residual" in gains_db:
        recipe.residual.gain_db = float(gains_db.pop("residual"))
    if gains_db:
        raise InputError(
            f"gain for {next(iter(gains_db))!r}, which is not a source: name one of the sources or residual"
        )
    return recipe.validate()


def on_sound_clock(sources: Sequence[Source], audio_offset_seconds: float) -> list[Source]:
    """Sources whose times are on the picture's clock (what a viewer sees: 0 at the first picture, as
    recipes, the CLI and the hosts give them) moved to the engine's clock, which counts from the
    clip's first sound sample: ``t - audio_offset_seconds``. The one place where the two clocks meet."""
    if audio_offset_seconds == 0:
        return list(sources)

    def moved(part):
        if part.time_seconds is None:
            return part
        return replace(part, time_seconds=part.time_seconds - audio_offset_seconds)

    return [Source(s.name, tuple(moved(part) for part in s.parts)) for s in sources]


def engine_sources(recipe: Recipe) -> list[Source]:
    """The recipe's sources as engine queries (every source, muted or not: a stem is rendered for each),
    their times moved from the picture's clock to the engine's (see :func:`on_sound_clock`)."""
    sources = [
        Source(
            s.name,
            tuple(
                Box(p.x, p.y, p.x1, p.y1, p.time_seconds) if p.is_box else Point(p.x, p.y, p.time_seconds)
                for p in s.parts
            ),
        )
        for s in recipe.sources
    ]
    return on_sound_clock(sources, recipe.clip.audio_offset_seconds)


def db_to_linear(gain_db: float) -> float:
    return 10.0 ** (gain_db / 20.0)


def linear_gains(recipe: Recipe) -> tuple[list[float], float]:
    """Linear gains of each source and of the residual, with mutes and solos applied.

    A muted source plays at 0. When any source is soloed, only the soloed sources play (a soloed
    source that is also muted stays silent) and the residual is silent too. A gain of exactly 0 dB
    is exactly 1.0, so that an untouched recipe renders the original audio bit for bit."""
    soloing = any(s.solo for s in recipe.sources)
    gains = [
        0.0 if s.mute or (soloing and not s.solo) else (1.0 if s.gain_db == 0 else db_to_linear(s.gain_db))
        for s in recipe.sources
    ]
    residual = recipe.residual
    rest = 0.0 if residual.mute or soloing else (1.0 if residual.gain_db == 0 else db_to_linear(residual.gain_db))
    return gains, rest


def parse_gain(text: str) -> tuple[str, float]:
    """'NAME=+6' / 'NAME=-12.5' / 'NAME=-inf' (dB) -> (name, dB); -inf means muted (returned as -inf)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    try:
        if not sep or not name:
            raise ValueError
        gain = float(value.strip().removesuffix("dB").removesuffix("db"))
        if math.isnan(gain) or gain == math.inf:
            raise ValueError
    except ValueError:
        raise InputError(f"cannot read gain {text!r}: write it like trumpet=+6 or residual=-12 (dB)") from None
    return name, gain


def apply_gains(recipe: Recipe, gains: Sequence[tuple[str, float]]) -> Recipe:
    """A copy of ``recipe`` with gains (dB; -inf mutes) set by source name or "residual"."""
    recipe = replace(recipe, sources=[replace(s) for s in recipe.sources], residual=replace(recipe.residual))
    for name, gain in gains:
        target = recipe.residual if name == "residual" else recipe.source(name)
        if target is None:
            names = ", ".join([s.name for s in recipe.sources] + ["residual"])
            raise InputError(f"no source named {name!r} to set a gain on: the sources are {names}")
        if gain == -math.inf:
            target.mute = True
        else:
            target.gain_db = gain
    return recipe.validate()


def check_clip(
    recipe: Recipe,
    relink: Path | str | None = None,
    accept_changed: bool = False,
    digest: Callable[[Path], str] | None = None,
) -> Recipe:
    """The recipe pointed at its clip, which must exist and (unless ``accept_changed``) have its sha256.

    ``relink``: the clip's new path, when it has moved. ``digest``: how to get the file's sha256
    (default: hash it; :meth:`pixelsep_plugin.api.Separator.clip_sha256` remembers it for a cached
    clip). Raises InputError in one line otherwise."""
    from pixelsep_plugin.runtime.store import sha256_of_file

    path = Path(relink).resolve() if relink is not None else recipe.clip.path
    if not path.exists():
        if relink is not None:
            raise InputError(f"--relink {relink}: no such file")
        raise InputError(f"the recipe's clip {path} is missing: if it has moved, pass --relink NEW_PATH")
    if not path.is_file():
        raise InputError(f"the recipe's clip {path} is not a regular file: pass --relink NEW_PATH")
    if not accept_changed:
        if (digest or sha256_of_file)(path) != recipe.clip.sha256:
            raise InputError(
                f"{path.name} is not the clip this recipe was made on (its sha256 differs): relink the original with "
                "--relink PATH, or pass --accept-changed-clip to use it anyway"
            )
    return replace(recipe, clip=replace(recipe.clip, path=path))


def check_model(recipe: Recipe, model_id: str, model_sha256: str, accept_other: bool = False) -> None:
    """Raise InputError unless the loaded model is the recipe's (or ``accept_other``)."""
    if accept_other or model_sha256 == recipe.model.sha256:
        return
    raise InputError(
        f"the recipe was made with model {recipe.model.id} ({recipe.model.sha256[:12]}), not {model_id} "
        f"({model_sha256[:12]}): give that model with --model, or pass --accept-other-model"
    )
