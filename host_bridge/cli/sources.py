"""Turn the command line's --at/--box/--name sequence into the engine's sources (pure, tested alone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Part, Source, check_part, parse_box, parse_point

if TYPE_CHECKING:
    from pixelsep_plugin.media import MediaInfo


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "point", "box" or "name"
    text: str


def build_sources(specs: list[SourceSpec]) -> list[Source]:
    """Each --at/--box starts a part; a following --name names it; parts sharing a name are one source."""
    parts: list[tuple[Part, str | None]] = []
    for spec in specs:
        if spec.kind == "name":
            if not parts or parts[-1][1] is not None:
                raise InputError(f"--name {spec.text} must follow the --at or --box it names")
            if not spec.text.strip() or any(c in spec.text for c in "/\\\0"):
                raise InputError(f"--name {spec.text!r} is not usable in a file name")
            parts[-1] = (parts[-1][0], spec.text.strip())
        else:
            parts.append((parse_point(spec.text) if spec.kind == "point" else parse_box(spec.text), None))
    if not parts:
        raise InputError("no source given: click at least one performer with --at X,Y or --box X0,Y0,X1,Y1")
    grouped: dict[str, list[Part]] = {}
    unnamed = 0
    for part, name in parts:
        if name is None:
            unnamed += 1
            name = f"source{unnamed}"
        if name == "residual":
            raise InputError("'residual' is reserved for the residual's file: choose another --name")
        grouped.setdefault(name, []).append(part)
    return [Source(name, tuple(group)) for name, group in grouped.items()]


def check_time_has_sound(t: float, info: MediaInfo) -> None:
    """Raise one line when ``t`` (seconds on the picture's clock) is outside the clip or where it has
    no sound (its sound starts ``info.audio_offset_seconds`` after the first picture)."""
    if not 0 <= t <= info.duration_seconds:
        raise InputError(f"time {t:g} s is outside the clip: it lasts {info.duration_seconds:.2f} s")
    start = info.audio_offset_seconds
    # (the sample count is an estimate from the stream's duration, which some containers leave unknown)
    end = min(start + info.num_audio_samples / info.sample_rate if info.sample_rate else start, info.duration_seconds)
    if not start - 1e-6 <= t <= end + 1e-6:
        raise InputError(
            f"at {t:g} s {info.path.name} has no sound (its sound runs from {start:.2f} s to {end:.2f} s): "
            "choose a time in that range"
        )


def check_sources(sources: list[Source], info: MediaInfo) -> None:
    """Every part inside the frame and the clip, and not before the sound starts, checked before any
    model is loaded. Times are on the picture's clock."""
    for source in sources:
        for part in source.parts:
            check_part(part, info.width, info.height, info.duration_seconds)
            t, start = part.time_seconds, info.audio_offset_seconds
            if t is not None and t < start - 1e-6:  # the pictures are analysed on the sound's clock, from its start
                raise InputError(
                    f"time {t:g} s is before the sound of {info.path.name} starts ({start:.2f} s): click at a time "
                    "from then on"
                )
