"""Editing timelines of a separated clip: the picture, the original sound and one audio track per stem.

A :class:`TimelineSpec` describes the clip (path, exact frame rate, picture and audio durations, the
audio's start offset) and its audio tracks in order: the original sound (usually muted, kept), then
one track per stem and the residual, each with a gain in dB and a mute flag. :func:`write_timeline`
writes it in the format its output suffix names (:data:`TIMELINE_FORMATS`):

========== =========================================== =============================================
suffix     format                                      written by
========== =========================================== =============================================
.otio      OpenTimelineIO JSON                         OpenTimelineIO
.xml       Final Cut Pro 7 XML (Premiere Pro, Resolve)  otio-fcp-adapter, then completed here
.fcpxml    Final Cut Pro X XML 1.8                     this module (read back with otio-fcpx-xml-adapter)
.kdenlive  Kdenlive project (document version 1.0)     this module (MLT XML with Kdenlive's properties)
.mlt       MLT XML (melt, Shotcut)                     this module
.xges      GStreamer Editing Services (ges-launch)     otio-xges-adapter, then completed here
========== =========================================== =============================================

Time: every clip's position, source in point and length are whole frames at the clip's frame rate
(a :class:`fractions.Fraction`, e.g. 24000/1001; OpenTimelineIO gets it as the float
23.976023976023978). The stems are placed at the audio's start offset rounded to the nearest frame
(:attr:`TimelineClip.audio_offset_frames`), and each runs for the whole frames its audio fills
(a last partial frame, under one frame long, is left off). Every clip starts at its media's beginning
(in point 0): when the audio starts before the picture, the timeline starts with the audio and the
picture follows that many frames in. So nothing is cut and no engine has to seek inside a file to
start a clip (MLT 7.12, for one, starts a WAV or FLAC trimmed at its head a few hundred samples off).
A track whose path is the clip itself plays the clip's own sound stream and is placed like the
picture: the file's own stream timing aligns it, as when the clip is imported by hand.

Gains and mutes in each format:

- .otio: an ``AudioGain`` effect on each audio clip (``metadata["pixelsep"]["gain_db"]``), the same
  numbers in the track's ``metadata["pixelsep"]``; a muted track has ``enabled = False``.
- .xml: an "Audio Levels" filter (linear ``level``) on each audio clip item; muted tracks and their
  clip items are ``<enabled>FALSE</enabled>``.
- .fcpxml: ``<adjust-volume amount="-12dB"/>``; muted clips are ``enabled="0"``.
- .mlt, .kdenlive: an MLT ``volume`` filter (``level`` in dB; Kdenlive's "Volume" effect) on each
  audio clip; a muted track is hidden (``hide="both"``).
- .xges: the volume of each audio clip's source (``<source children-properties="GstVolume::volume=...">``,
  linear, and ``GstVolume::mute``); a muted track's layer has its audio track deactivated
  (``deactivated-tracks``, GES 1.18+). A volume *effect* is avoided: GES 1.22 cannot link a layer's
  effects once that layer's track is deactivated, and renders nothing.

Outputs are written atomically (temp file + rename); the media files are only referenced.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pixelsep_plugin.errors import InputError, PixelsepError

if TYPE_CHECKING:  # OpenTimelineIO is an optional dependency (extra "timeline"), imported on first use
    import opentimelineio as otio

    from pixelsep_plugin.api import Analysis, Separator
    from pixelsep_plugin.recipe import Recipe

TIMELINE_FORMATS: dict[str, str] = {
    ".otio": "OpenTimelineIO JSON",
    ".xml": "Final Cut Pro 7 XML (Premiere Pro, DaVinci Resolve)",
    ".fcpxml": "Final Cut Pro X XML",
    ".kdenlive": "Kdenlive project",
    ".mlt": "MLT XML (melt, Shotcut)",
    ".xges": "GStreamer Editing Services project (ges-launch, Pitivi)",
}
# The loudest gain every format holds: FCP 7's Audio Levels and Final Cut Pro X stop at +12 dB.
MAX_GAIN_DB = 12.0
# Final Cut Pro X's quietest volume; quieter gains are written as this there.
MIN_GAIN_DB = -96.0
METADATA_KEY = "pixelsep"  # OpenTimelineIO metadata namespace
GAIN_EFFECT_NAME = "AudioGain"  # OpenTimelineIO effect_name of a track's gain
PICTURE_TRACK_NAME = "Picture"
# Kdenlive 20.08-22.12 documents ("generation 4"); later Kdenlive versions upgrade them on opening.
KDENLIVE_DOCUMENT_VERSION = "1"
KDENLIVE_INTERNAL = "237"  # Kdenlive's mark for the transitions it manages itself (internal_added)
FCPX_AUDIO_RATES = {
    32000: "32k",
    44100: "44.1k",
    48000: "48k",
    88200: "88.2k",
    96000: "96k",
    176400: "176.4k",
    192000: "192k",
}
NANOSECONDS = 1_000_000_000


class TimelineDependencyError(PixelsepError):
    """An optional package that a timeline format needs is not installed."""


# ---------------------------------------------------------------------------------------------------
# The description


def _fraction(value: Fraction | int | str, what: str) -> Fraction:
    if isinstance(value, float):  # 23.976 is not 24000/1001: frame exactness needs the exact ratio
        raise InputError(f"{what} {value} is not exact: give it as a fraction such as '24000/1001' or 25")
    try:
        fraction = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(f"{what} must be a fraction such as 24000/1001 or 25, got {value!r}") from None
    if fraction <= 0:
        raise InputError(f"{what} must be positive, got {value!r}")
    return fraction


def _absolute(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_absolute():
        raise InputError(f"{what} must be an absolute path (editors resolve relative ones differently), got {path}")
    return path


@dataclass(frozen=True)
class TimelineClip:
    """The clip a timeline is made of.

    path: the video file (absolute).
    frame_rate: frames per second, exact: Fraction(24000, 1001), Fraction(25), "30000/1001" (kept as a Fraction).
    num_frames: the picture's length in frames.
    width, height: the picture's display size in pixels.
    sample_rate: the audio's rate in Hz.
    num_channels: audio channels.
    num_audio_samples: the audio's length in samples per channel (the stems have this length).
    audio_offset_seconds: where the audio starts on the picture's clock (2.0: 2 s after the first picture;
        negative: before it).
    """

    path: Path
    frame_rate: Fraction
    num_frames: int
    width: int
    height: int
    sample_rate: int
    num_channels: int
    num_audio_samples: int
    audio_offset_seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _absolute(self.path, "the clip's path"))
        object.__setattr__(self, "frame_rate", _fraction(self.frame_rate, "the clip's frame rate"))
        for name in ("num_frames", "width", "height", "sample_rate", "num_channels", "num_audio_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"the clip's {name} must be a positive whole number, got {value!r}")
        if not math.isfinite(self.audio_offset_seconds):
            raise InputError(
                f"the clip's audio offset must be a finite number of seconds, got {self.audio_offset_seconds}"
            )

    @property
    def audio_offset_frames(self) -> int:
        """The audio's start offset in whole frames (rounded to the nearest frame)."""
        return round(Fraction(self.audio_offset_seconds) * self.frame_rate)

    @property
    def num_audio_frames(self) -> int:
        """Whole frames the audio fills (a last partial frame is not counted)."""
        return math.floor(Fraction(self.num_audio_samples) * self.frame_rate / self.sample_rate)


@dataclass(frozen=True)
class TimelineTrack:
    """One audio track: ``name`` (shown by the editor), ``path`` (absolute: a float WAV or FLAC of the clip's
    audio length and rate, or the clip itself for its own sound), ``gain_db`` and ``muted``."""

    name: str
    path: Path
    gain_db: float = 0.0
    muted: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"every audio track needs a name, got {self.name!r}")
        object.__setattr__(self, "path", _absolute(self.path, f"the path of track {self.name!r}"))
        try:
            gain = float(self.gain_db)
        except (TypeError, ValueError):
            raise InputError(f"the gain of track {self.name!r} must be a number of dB, got {self.gain_db!r}") from None
        if not math.isfinite(gain) or gain > MAX_GAIN_DB:
            raise InputError(
                f"gain {self.gain_db} dB of track {self.name!r} is not allowed: give at most "
                f"+{MAX_GAIN_DB:g} dB (the most FCP 7 and Final Cut Pro X hold); mute the track to silence it"
            )
        object.__setattr__(self, "gain_db", gain)
        object.__setattr__(self, "muted", bool(self.muted))

    @property
    def gain(self) -> float:
        """The gain as a linear factor."""
        return 10.0 ** (self.gain_db / 20.0)


@dataclass(frozen=True)
class TimelineSpec:
    """A timeline: its ``name``, the ``clip`` and its ``audio_tracks`` in order (top to bottom in an editor)."""

    name: str
    clip: TimelineClip
    audio_tracks: tuple[TimelineTrack, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("the timeline needs a name")
        tracks = tuple(self.audio_tracks)
        if not tracks:
            raise InputError("a timeline needs at least one audio track")
        names = [track.name for track in tracks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InputError(f"audio track names must differ; {', '.join(map(repr, duplicates))} is used twice")
        if self.clip.num_audio_frames == 0:
            raise InputError(
                f"the clip's audio ({self.clip.num_audio_samples} samples) is shorter than one frame: "
                "there is nothing to put on the timeline"
            )
        object.__setattr__(self, "audio_tracks", tracks)

    def uses_clip_sound(self, track: TimelineTrack) -> bool:
        """True when ``track`` plays the clip's own sound stream (its path is the clip)."""
        return track.path == self.clip.path


@dataclass(frozen=True)
class Placement:
    """Where a clip sits: ``start_frames`` on the timeline, ``in_frames`` into its source, ``num_frames`` long."""

    start_frames: int
    in_frames: int
    num_frames: int

    @property
    def end_frames(self) -> int:
        """The first timeline frame after the clip."""
        return self.start_frames + self.num_frames


def picture_placement(spec: TimelineSpec) -> Placement:
    """The picture: the whole clip, from frame 0, or from where the audio offset puts it when the audio
    starts before the picture."""
    return Placement(max(0, -spec.clip.audio_offset_frames), 0, spec.clip.num_frames)


def track_placement(spec: TimelineSpec, track: TimelineTrack) -> Placement:
    """Where ``track``'s audio sits: the clip's own sound like the picture; a stem, whole, at the audio
    offset from the picture's start."""
    if spec.uses_clip_sound(track):
        return picture_placement(spec)
    return Placement(max(0, spec.clip.audio_offset_frames), 0, spec.clip.num_audio_frames)


def timeline_frames(spec: TimelineSpec) -> int:
    """The timeline's length in frames: to the end of the picture or of the audio, whichever is later."""
    ends = [track_placement(spec, track).end_frames for track in spec.audio_tracks]
    return max([picture_placement(spec).end_frames, *ends])


def describe_clip(path: Path | str) -> TimelineClip:
    """A :class:`TimelineClip` from what the file says (``pixelsep_plugin.media.probe``); the audio length is
    the container's estimate, so pass the decoded length instead where it is known."""
    from pixelsep_plugin.media import probe, require_audio, require_video

    info = probe(Path(path).absolute())
    require_video(info)
    require_audio(info)
    return TimelineClip(
        path=info.path.absolute(),
        frame_rate=Fraction(info.frame_rate_fraction),
        num_frames=info.num_video_frames,
        width=info.width,
        height=info.height,
        sample_rate=info.sample_rate,
        num_channels=info.num_channels,
        num_audio_samples=info.num_audio_samples,
        audio_offset_seconds=info.audio_offset_seconds,
    )


# ---------------------------------------------------------------------------------------------------
# Shared helpers


def _file_url(path: Path) -> str:
    """file:// URL of an absolute path (percent-encoded; editors read these)."""
    return "file://" + quote(path.as_posix())


def _frames_to_seconds(frames: int, frame_rate: Fraction) -> Fraction:
    return Fraction(frames) / frame_rate


def _xml_bytes(root: ET.Element, doctype: str | None = None) -> bytes:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    head = '<?xml version="1.0" encoding="utf-8"?>\n' + (f"{doctype}\n" if doctype else "")
    return (head + body + "\n").encode("utf-8")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _import_otio() -> Any:
    try:
        import opentimelineio
    except ImportError:
        raise TimelineDependencyError(
            "this timeline format needs OpenTimelineIO and its adapters: pip install 'pixelsep[timeline]'"
        ) from None
    return opentimelineio


def _check_adapter(otio_module: Any, adapter_name: str, package: str) -> None:
    if adapter_name not in otio_module.adapters.available_adapter_names():
        raise TimelineDependencyError(
            f"the {adapter_name} timeline adapter is missing: pip install {package} (or 'pixelsep[timeline]')"
        )


# ---------------------------------------------------------------------------------------------------
# OpenTimelineIO


def build_otio_timeline(spec: TimelineSpec, with_gains: bool = True) -> otio.schema.Timeline:
    """The timeline as an OpenTimelineIO object: a "Picture" video track, then one audio track per entry.

    Every range is in frames at the clip's rate. with_gains: give each audio clip its ``AudioGain`` effect and
    each muted track ``enabled = False`` (adapters that misread either get a copy without them).
    """
    otio_module = _import_otio()
    schema, opentime = otio_module.schema, otio_module.opentime
    rate = float(spec.clip.frame_rate)

    def time_range(start: int, frames: int) -> Any:
        return opentime.TimeRange(opentime.RationalTime(start, rate), opentime.RationalTime(frames, rate))

    clip = spec.clip
    timeline = schema.Timeline(name=spec.name, global_start_time=opentime.RationalTime(0, rate))
    timeline.metadata[METADATA_KEY] = {
        "frame_rate": f"{clip.frame_rate.numerator}/{clip.frame_rate.denominator}",
        "sample_rate": clip.sample_rate,
        "num_channels": clip.num_channels,
        "audio_offset_seconds": clip.audio_offset_seconds,
        "audio_offset_frames": clip.audio_offset_frames,
        "width": clip.width,
        "height": clip.height,
    }
    picture_reference = schema.ExternalReference(
        target_url=_file_url(clip.path), available_range=time_range(0, clip.num_frames)
    )
    picture = picture_placement(spec)
    video = schema.Track(name=PICTURE_TRACK_NAME, kind=schema.TrackKind.Video)
    if picture.start_frames:
        video.append(schema.Gap(source_range=time_range(0, picture.start_frames)))
    video.append(
        schema.Clip(
            name=clip.path.stem,
            media_reference=picture_reference,
            source_range=time_range(picture.in_frames, picture.num_frames),
        )
    )
    timeline.tracks.append(video)
    for track in spec.audio_tracks:
        place = track_placement(spec, track)
        own_sound = spec.uses_clip_sound(track)
        if own_sound:
            reference = picture_reference.clone()
        else:
            reference = schema.ExternalReference(
                target_url=_file_url(track.path),
                available_range=time_range(0, clip.num_audio_frames),
                metadata={METADATA_KEY: {"num_samples": clip.num_audio_samples, "sample_rate": clip.sample_rate}},
            )
        audio = schema.Track(name=track.name, kind=schema.TrackKind.Audio)
        audio.metadata[METADATA_KEY] = {"gain_db": track.gain_db, "muted": track.muted, "clip_sound": own_sound}
        if place.start_frames:
            audio.append(schema.Gap(source_range=time_range(0, place.start_frames)))
        item = schema.Clip(
            name=track.name, media_reference=reference, source_range=time_range(place.in_frames, place.num_frames)
        )
        if with_gains:
            item.effects.append(
                schema.Effect(
                    name=f"{track.name} gain",
                    effect_name=GAIN_EFFECT_NAME,
                    metadata={METADATA_KEY: {"gain_db": track.gain_db, "gain": track.gain}},
                )
            )
            audio.enabled = not track.muted
        audio.append(item)
        timeline.tracks.append(audio)
    return timeline


def _otio_json(spec: TimelineSpec) -> bytes:
    otio_module = _import_otio()
    return otio_module.adapters.write_to_string(build_otio_timeline(spec), adapter_name="otio_json").encode("utf-8")


# ---------------------------------------------------------------------------------------------------
# Final Cut Pro 7 XML (xmeml): written by otio-fcp-adapter, then given what the adapter leaves out


def _fcp7_rate(frame_rate: Fraction) -> ET.Element:
    rate = ET.Element("rate")
    timebase = math.ceil(frame_rate)
    _sub(rate, "timebase", str(timebase))
    _sub(rate, "ntsc", "FALSE" if frame_rate == timebase else "TRUE")
    return rate


def _fcp7_audio_characteristics(parent: ET.Element, spec: TimelineSpec, depth: int) -> None:
    characteristics = _sub(parent, "samplecharacteristics")
    _sub(characteristics, "depth", str(depth))
    _sub(characteristics, "samplerate", str(spec.clip.sample_rate))


def _fcp7_audio_levels(track: TimelineTrack) -> ET.Element:
    filter_element = ET.Element("filter")
    effect = _sub(filter_element, "effect")
    _sub(effect, "name", "Audio Levels")
    _sub(effect, "effectid", "audiolevels")
    _sub(effect, "effectcategory", "audiolevels")
    _sub(effect, "effecttype", "audiolevels")
    _sub(effect, "mediatype", "audio")
    parameter = _sub(effect, "parameter", authoringApp="PremierePro")
    _sub(parameter, "parameterid", "level")
    _sub(parameter, "name", "Level")
    _sub(parameter, "valuemin", "0")
    _sub(parameter, "valuemax", "3.98109")
    _sub(parameter, "value", f"{track.gain:.6g}")
    return filter_element


def _fcp7_xml(spec: TimelineSpec) -> bytes:
    otio_module = _import_otio()
    _check_adapter(otio_module, "fcp_xml", "otio-fcp-adapter")
    text = otio_module.adapters.write_to_string(build_otio_timeline(spec, with_gains=False), adapter_name="fcp_xml")
    root = ET.fromstring(text)
    sequence = root.find("./project/children/sequence")
    if sequence is None:
        raise PixelsepError("the FCP 7 XML adapter wrote no sequence: its version may be unsupported")
    # The sequence's format, which Premiere and Resolve read to set up the timeline.
    video_format = sequence.find("./media/video/format")
    if video_format is not None:
        characteristics = _sub(video_format, "samplecharacteristics")
        characteristics.append(_fcp7_rate(spec.clip.frame_rate))
        _sub(characteristics, "width", str(spec.clip.width))
        _sub(characteristics, "height", str(spec.clip.height))
        _sub(characteristics, "pixelaspectratio", "square")
    audio_media = sequence.find("./media/audio")
    if audio_media is not None:
        audio_format = ET.Element("format")
        _fcp7_audio_characteristics(audio_format, spec, depth=16)
        audio_media.insert(0, audio_format)
        channels = ET.Element("numOutputChannels")
        channels.text = str(spec.clip.num_channels)
        audio_media.insert(0, channels)
    # Files: what their streams hold.
    for file_element in sequence.iter("file"):
        media = file_element.find("./media")
        if media is None:
            continue
        for stream in list(media):
            media.remove(stream)
        url = file_element.findtext("./pathurl", "")
        if url == _file_url(spec.clip.path):
            video = _sub(media, "video")
            characteristics = _sub(video, "samplecharacteristics")
            _sub(characteristics, "width", str(spec.clip.width))
            _sub(characteristics, "height", str(spec.clip.height))
        audio = _sub(media, "audio")
        _fcp7_audio_characteristics(audio, spec, depth=32 if url != _file_url(spec.clip.path) else 16)
        _sub(audio, "channelcount", str(spec.clip.num_channels))
    # Clip items: one <rate> each (the adapter writes two), and on the audio side the source track,
    # the gain and the mute the adapter drops.
    for clip_item in sequence.iter("clipitem"):
        rates = clip_item.findall("./rate")
        for extra in rates[1:]:
            clip_item.remove(extra)
    audio_tracks = sequence.findall("./media/audio/track")
    if len(audio_tracks) != len(spec.audio_tracks):
        raise PixelsepError(
            f"the FCP 7 XML adapter wrote {len(audio_tracks)} audio tracks for {len(spec.audio_tracks)}: "
            "its version may be unsupported"
        )
    for track_element, track in zip(audio_tracks, spec.audio_tracks, strict=True):
        for clip_item in track_element.findall("./clipitem"):
            _sub(clip_item, "enabled", "FALSE" if track.muted else "TRUE")
            source_track = _sub(clip_item, "sourcetrack")
            _sub(source_track, "mediatype", "audio")
            _sub(source_track, "trackindex", "1")
            clip_item.append(_fcp7_audio_levels(track))
        _sub(track_element, "enabled", "FALSE" if track.muted else "TRUE")
        _sub(track_element, "locked", "FALSE")
    return _xml_bytes(root, doctype="<!DOCTYPE xmeml>")


# ---------------------------------------------------------------------------------------------------
# Final Cut Pro X XML (fcpxml 1.8)


def _fcpx_time(seconds: Fraction) -> str:
    """FCPXML's rational time: "0s", "2s", "1001/24000s"."""
    if seconds == 0:
        return "0s"
    if seconds.denominator == 1:
        return f"{seconds.numerator}s"
    return f"{seconds.numerator}/{seconds.denominator}s"


def _fcpx_frames(frames: int, frame_rate: Fraction) -> str:
    # Written as a multiple of the frame duration (e.g. 48048/24000s), the way Final Cut Pro writes them.
    duration = 1 / frame_rate
    return "0s" if frames == 0 else f"{frames * duration.numerator}/{duration.denominator}s"


def _fcpx_gain(gain_db: float) -> str:
    return f"{max(gain_db, MIN_GAIN_DB):.6g}dB"


def _fcpxml(spec: TimelineSpec) -> bytes:
    clip = spec.clip
    rate = clip.frame_rate
    root = ET.Element("fcpxml", version="1.8")
    resources = _sub(root, "resources")
    frame_duration = 1 / rate
    _sub(
        resources,
        "format",
        id="r1",
        frameDuration=f"{frame_duration.numerator}/{frame_duration.denominator}s",
        width=str(clip.width),
        height=str(clip.height),
    )
    audio_rate = FCPX_AUDIO_RATES.get(clip.sample_rate)
    audio_attributes = {
        "audioSources": "1",
        "audioChannels": str(clip.num_channels),
        "audioRate": str(clip.sample_rate),
    }
    _sub(
        resources,
        "asset",
        id="r2",
        name=clip.path.stem,
        start="0s",
        duration=_fcpx_frames(clip.num_frames, rate),
        hasVideo="1",
        hasAudio="1",
        format="r1",
        src=_file_url(clip.path),
        **audio_attributes,
    )
    asset_ids: dict[Path, str] = {clip.path: "r2"}
    audio_seconds = Fraction(clip.num_audio_samples, clip.sample_rate)
    for track in spec.audio_tracks:
        if track.path in asset_ids:
            continue
        asset_ids[track.path] = f"r{len(asset_ids) + 2}"
        _sub(
            resources,
            "asset",
            id=asset_ids[track.path],
            name=track.path.stem,
            start="0s",
            duration=_fcpx_time(audio_seconds),
            hasVideo="0",
            hasAudio="1",
            src=_file_url(track.path),
            **audio_attributes,
        )
    library = _sub(root, "library")
    event = _sub(library, "event", name=spec.name)
    project = _sub(event, "project", name=spec.name)
    layout = {1: "mono", 2: "stereo"}.get(clip.num_channels, "surround")
    sequence_attributes = {"format": "r1", "duration": _fcpx_frames(timeline_frames(spec), rate), "tcStart": "0s"}
    sequence_attributes.update(tcFormat="NDF", audioLayout=layout)
    if audio_rate:
        sequence_attributes["audioRate"] = audio_rate
    sequence = _sub(project, "sequence", **sequence_attributes)
    spine = _sub(sequence, "spine")
    picture = picture_placement(spec)
    anchor = None
    if picture.start_frames:  # the audio starts first: a gap before the picture holds the audio clips
        anchor = _sub(
            spine, "gap", name="Gap", offset="0s", start="0s", duration=_fcpx_frames(picture.start_frames, rate)
        )
    picture_clip = _sub(
        spine,
        "asset-clip",
        ref="r2",
        name=clip.path.stem,
        offset=_fcpx_frames(picture.start_frames, rate),
        start=_fcpx_frames(picture.in_frames, rate),
        duration=_fcpx_frames(picture.num_frames, rate),
        srcEnable="video",
        tcFormat="NDF",
    )
    # Audio clips connect below the first spine item (lanes -1, -2, ...); their offsets are on that item's own
    # time, which starts at 0 like the timeline (a gap at 0, or the picture when it starts the timeline).
    for lane, track in enumerate(spec.audio_tracks, start=1):
        place = track_placement(spec, track)
        connected = _sub(
            picture_clip if anchor is None else anchor,
            "asset-clip",
            ref=asset_ids[track.path],
            lane=str(-lane),
            name=track.name,
            offset=_fcpx_frames(place.start_frames, rate),
            start=_fcpx_frames(place.in_frames, rate),
            duration=_fcpx_frames(place.num_frames, rate),
            srcEnable="audio",
            enabled="0" if track.muted else "1",
            audioRole="dialogue" if spec.uses_clip_sound(track) else "music",
        )
        _sub(connected, "adjust-volume", amount=_fcpx_gain(track.gain_db))
    return _xml_bytes(root, doctype="<!DOCTYPE fcpxml>")


# ---------------------------------------------------------------------------------------------------
# MLT XML: plain (melt, Shotcut) and Kdenlive's project flavour


def _property(parent: ET.Element, name: str, value: str | int | float) -> ET.Element:
    return _sub(parent, "property", str(value), name=name)


def _mlt_profile(root: ET.Element, clip: TimelineClip) -> None:
    aspect = Fraction(clip.width, clip.height)
    rate = clip.frame_rate
    _sub(
        root,
        "profile",
        description=f"{clip.width}x{clip.height} {float(rate):.6g} fps",
        width=str(clip.width),
        height=str(clip.height),
        progressive="1",
        sample_aspect_num="1",
        sample_aspect_den="1",
        display_aspect_num=str(aspect.numerator),
        display_aspect_den=str(aspect.denominator),
        frame_rate_num=str(rate.numerator),
        frame_rate_den=str(rate.denominator),
        colorspace="709",
    )


def _mlt_volume(parent: ET.Element, track: TimelineTrack, kdenlive: bool) -> None:
    volume = _sub(parent, "filter")
    _property(volume, "mlt_service", "volume")
    _property(volume, "level", f"{track.gain_db:.6g}")
    if kdenlive:
        _property(volume, "kdenlive_id", "volume")
        _property(volume, "kdenlive:collapsed", 0)


def _mlt_playlist(parent: ET.Element, playlist_id: str, producer_id: str, place: Placement) -> ET.Element:
    playlist = _sub(parent, "playlist", id=playlist_id)
    if place.start_frames:
        _sub(playlist, "blank", length=str(place.start_frames))
    _sub(
        playlist,
        "entry",
        producer=producer_id,
        **{"in": str(place.in_frames), "out": str(place.in_frames + place.num_frames - 1)},
    )
    return playlist


def _mlt_transitions(tractor: ET.Element, video_tracks: list[int], audio_tracks: list[int], kdenlive: bool) -> None:
    """Composite every video track over the background (track 0) and sum every audio track into it."""
    for index in video_tracks:
        transition = _sub(tractor, "transition", id=f"transition_video{index}")
        _property(transition, "a_track", 0)
        _property(transition, "b_track", index)
        _property(transition, "mlt_service", "qtblend")
        _property(transition, "always_active", 1)
        if kdenlive:
            _property(transition, "kdenlive_id", "qtblend")
            _property(transition, "internal_added", KDENLIVE_INTERNAL)
    for index in audio_tracks:
        transition = _sub(tractor, "transition", id=f"transition_audio{index}")
        _property(transition, "a_track", 0)
        _property(transition, "b_track", index)
        _property(transition, "mlt_service", "mix")
        _property(transition, "always_active", 1)
        _property(transition, "sum", 1)
        if kdenlive:
            _property(transition, "kdenlive_id", "mix")
            _property(transition, "internal_added", KDENLIVE_INTERNAL)
            _property(transition, "accepts_blanks", 1)


def _mlt_background(root: ET.Element, producer_id: str, length: int) -> None:
    background = _sub(root, "producer", id=producer_id, **{"in": "0", "out": str(length - 1)})
    _property(background, "length", length)
    _property(background, "eof", "pause")
    _property(background, "resource", "0")  # opaque black
    _property(background, "mlt_service", "color")
    _property(background, "mlt_image_format", "rgba")
    _property(background, "set.test_audio", 0)  # silence, so every audio track can be summed into it


def _mlt_media_producer(
    root: ET.Element, producer_id: str, path: Path, length: int, audio_only: bool, service: str
) -> ET.Element:
    producer = _sub(root, "producer", id=producer_id, **{"in": "0", "out": str(length - 1)})
    _property(producer, "length", length)
    _property(producer, "eof", "pause")
    _property(producer, "resource", str(path))
    _property(producer, "mlt_service", service)
    _property(producer, "seekable", 1)
    if audio_only:
        _property(producer, "video_index", -1)
    return producer


def _mlt(spec: TimelineSpec) -> bytes:
    """Plain MLT XML: a background, the picture track and one playlist per audio track, summed by ``mix``."""
    clip = spec.clip
    length = timeline_frames(spec)
    root = ET.Element("mlt", LC_NUMERIC="C", version="7.0.0", title=spec.name, producer="main")
    _mlt_profile(root, clip)
    _mlt_background(root, "background", length)
    audio_length = math.ceil(Fraction(clip.num_audio_samples) * clip.frame_rate / clip.sample_rate)
    _mlt_media_producer(root, "picture", clip.path, clip.num_frames, audio_only=False, service="avformat")
    picture = _mlt_playlist(root, "playlist_picture", "picture", picture_placement(spec))
    _property(picture, "shotcut:name", PICTURE_TRACK_NAME)
    for index, track in enumerate(spec.audio_tracks):
        own_sound = spec.uses_clip_sound(track)
        producer_id = f"audio{index}"
        _mlt_media_producer(
            root,
            producer_id,
            track.path,
            clip.num_frames if own_sound else audio_length,
            audio_only=True,
            service="avformat",
        )
        playlist = _mlt_playlist(root, f"playlist_audio{index}", producer_id, track_placement(spec, track))
        _property(playlist, "shotcut:name", track.name)
        _property(playlist, "shotcut:audio", 1)
        _mlt_volume(playlist.find("./entry"), track, kdenlive=False)
    tractor = _sub(root, "tractor", id="main", title=spec.name, **{"in": "0", "out": str(length - 1)})
    _property(tractor, "shotcut", 1)
    multitrack = _sub(tractor, "multitrack")
    _sub(multitrack, "track", producer="background")
    _sub(multitrack, "track", producer="playlist_picture", hide="audio")
    for index, track in enumerate(spec.audio_tracks):
        _sub(multitrack, "track", producer=f"playlist_audio{index}", hide="both" if track.muted else "video")
    # The picture needs no compositing transition: MLT shows the top track that has a picture (and melt then
    # renders without a display, which the Qt compositors need).
    _mlt_transitions(tractor, [], list(range(2, 2 + len(spec.audio_tracks))), kdenlive=False)
    return _xml_bytes(root)


def _kdenlive_track(
    root: ET.Element, tractor_id: str, name: str, place: Placement, producer_id: str, bin_id: int, audio: bool
) -> tuple[ET.Element, ET.Element]:
    """A Kdenlive track: a tractor of two playlists (the second holds same-track mixes), named ``name``."""
    first = _mlt_playlist(root, f"{tractor_id}_a", producer_id, place)
    entry = first.find("./entry")
    _property(entry, "kdenlive:id", bin_id)
    second = _sub(root, "playlist", id=f"{tractor_id}_b")
    tractor = _sub(root, "tractor", id=tractor_id, **{"in": "0", "out": str(max(place.end_frames - 1, 0))})
    if audio:
        for playlist in (first, second):
            _property(playlist, "kdenlive:audio_track", 1)
        _property(tractor, "kdenlive:audio_track", 1)
    _property(tractor, "kdenlive:track_name", name)
    _property(tractor, "kdenlive:trackheight", 69)
    _property(tractor, "kdenlive:timeline_active", 1)
    _property(tractor, "kdenlive:collapsed", 0)
    hide = "video" if audio else "audio"
    _sub(tractor, "track", producer=first.get("id", ""), hide=hide)
    _sub(tractor, "track", producer=second.get("id", ""), hide=hide)
    return tractor, entry


def _kdenlive(spec: TimelineSpec) -> bytes:
    """A Kdenlive project: the bin (clip and stems), one Kdenlive track per audio track and the picture."""
    clip = spec.clip
    length = timeline_frames(spec)
    root = ET.Element("mlt", LC_NUMERIC="C", version="7.0.0", title=spec.name, producer="main_bin")
    _mlt_profile(root, clip)
    audio_length = math.ceil(Fraction(clip.num_audio_samples) * clip.frame_rate / clip.sample_rate)
    # Bin clips: kdenlive:id 2, 3, ... (Kdenlive keeps 1 for its own use); clip_type 0 = audio and video, 1 = audio.
    bin_ids: dict[Path, int] = {}
    bin_producers: list[str] = []
    media = [(clip.path, clip.path.stem, False), *[(track.path, track.name, True) for track in spec.audio_tracks]]
    for path, clip_name, audio_only in media:
        if path in bin_ids:
            continue
        bin_ids[path] = len(bin_ids) + 2
        producer_id = f"producer{len(bin_producers)}"
        producer = _mlt_media_producer(
            root,
            producer_id,
            path,
            audio_length if audio_only else clip.num_frames,
            audio_only=audio_only,
            service="avformat-novalidate",
        )
        _property(producer, "kdenlive:clipname", clip_name)
        _property(producer, "kdenlive:id", bin_ids[path])
        _property(producer, "kdenlive:clip_type", 1 if audio_only else 0)
        _property(producer, "kdenlive:folderid", -1)
        _property(producer, "kdenlive:file_size", path.stat().st_size if path.exists() else 0)
        bin_producers.append(producer_id)
    main_bin = _sub(root, "playlist", id="main_bin")
    _property(main_bin, "kdenlive:docproperties.version", KDENLIVE_DOCUMENT_VERSION)
    _property(main_bin, "kdenlive:docproperties.decimalPoint", ".")
    _property(main_bin, "kdenlive:docproperties.audioChannels", clip.num_channels)
    _property(main_bin, "kdenlive:docproperties.enableproxy", 0)
    _property(main_bin, "kdenlive:docproperties.seekOffset", 30000)
    _property(main_bin, "kdenlive:docproperties.guides", "[]")
    _property(main_bin, "kdenlive:docproperties.groups", "[]")
    _property(main_bin, "kdenlive:docproperties.documentid", "1")
    _property(main_bin, "xml_retain", 1)
    for producer_id in bin_producers:
        producer = root.find(f"./producer[@id='{producer_id}']")
        out = producer.get("out", "0") if producer is not None else "0"
        _sub(main_bin, "entry", producer=producer_id, **{"in": "0", "out": out})
    background = _sub(root, "producer", id="black_track", **{"in": "0", "out": str(length - 1)})
    _property(background, "length", 2147483647)
    _property(background, "eof", "continue")
    _property(background, "resource", "black")
    _property(background, "aspect_ratio", 1)
    _property(background, "mlt_service", "color")
    _property(background, "kdenlive:playlistid", "black_track")
    _property(background, "mlt_image_format", "rgba")
    _property(background, "set.test_audio", 0)
    # Track order in the file is bottom to top: the last audio track first, the original sound just
    # below the picture (A1), then the picture (V1).
    tracks: list[tuple[str, bool, bool]] = []  # (tractor id, audio, muted)
    for index in reversed(range(len(spec.audio_tracks))):
        track = spec.audio_tracks[index]
        tractor_id = f"tractor_audio{index}"
        _, entry = _kdenlive_track(
            root,
            tractor_id,
            track.name,
            track_placement(spec, track),
            bin_producers[list(bin_ids).index(track.path)],
            bin_ids[track.path],
            audio=True,
        )
        _mlt_volume(entry, track, kdenlive=True)
        tracks.append((tractor_id, True, track.muted))
    _kdenlive_track(
        root, "tractor_picture", PICTURE_TRACK_NAME, picture_placement(spec), bin_producers[0], 2, audio=False
    )
    tracks.append(("tractor_picture", False, False))
    main = _sub(root, "tractor", id="maintractor", global_feed="1", **{"in": "0", "out": str(length - 1)})
    _sub(main, "track", producer="black_track")
    for tractor_id, audio, muted in tracks:
        hide = ("both" if muted else "video") if audio else "audio"
        _sub(main, "track", producer=tractor_id, hide=hide)
        if audio and muted:  # Kdenlive reads a track's mute from the playlists inside it too
            for inner in root.findall(f"./tractor[@id='{tractor_id}']/track"):
                inner.set("hide", "both")
    audio_indexes = [position for position, (_, audio, _) in enumerate(tracks, start=1) if audio]
    video_indexes = [position for position, (_, audio, _) in enumerate(tracks, start=1) if not audio]
    _mlt_transitions(main, video_indexes, audio_indexes, kdenlive=True)
    return _xml_bytes(root)


# ---------------------------------------------------------------------------------------------------
# GStreamer Editing Services (xges): written by otio-xges-adapter, then completed here


def _gst_string(text: str) -> str:
    """A GstStructure string field's value, quoted and escaped (as GStreamer serializes it)."""
    escaped = "".join("\\" + char if not (char.isalnum() or char in "_-+./:") else char for char in text)
    return f'"{escaped}"'


def _xges_nanoseconds(frames: int, frame_rate: Fraction) -> int:
    # Rounded down, as GStreamer turns frame counts into times (gst_util_uint64_scale): frame k starts at
    # floor(k * 1e9 / rate) ns, so a clip boundary falls exactly on a frame's time stamp.
    return math.floor(Fraction(frames * NANOSECONDS) / frame_rate)


def _xges(spec: TimelineSpec) -> bytes:
    otio_module = _import_otio()
    _check_adapter(otio_module, "xges", "otio-xges-adapter")
    text = otio_module.adapters.write_to_string(build_otio_timeline(spec, with_gains=False), adapter_name="xges")
    root = ET.fromstring(text)
    timeline = root.find("./project/timeline")
    if timeline is None:
        raise PixelsepError("the xges adapter wrote no timeline: its version may be unsupported")
    clip = spec.clip
    rate = clip.frame_rate
    audio_track_id = None
    for track_element in timeline.findall("./track"):
        if track_element.get("track-type") == "4":  # video: the clip's size and exact frame rate
            caps = (
                f"video/x-raw, width=(int){clip.width}, height=(int){clip.height}, "
                f"framerate=(fraction){rate.numerator}/{rate.denominator}"
            )
        elif track_element.get("track-type") == "2":  # audio: the clip's rate and channels
            audio_track_id = track_element.get("track-id")
            caps = f"audio/x-raw, rate=(int){clip.sample_rate}, channels=(int){clip.num_channels}"
        else:
            continue
        track_element.set(
            "properties", f"properties, mixing=(boolean)true, restriction-caps=(string){_gst_string(caps)};"
        )
    if audio_track_id is None:
        raise PixelsepError("the xges adapter wrote no audio track: its version may be unsupported")
    layers = timeline.findall("./layer")
    # The adapter writes one layer per OpenTimelineIO track, the last track first (priority 0).
    placements = [picture_placement(spec)] + [track_placement(spec, track) for track in spec.audio_tracks]
    if len(layers) != len(placements):
        raise PixelsepError(
            f"the xges adapter wrote {len(layers)} layers for {len(placements)} tracks: its version may be unsupported"
        )
    tracks: list[TimelineTrack | None] = [None, *spec.audio_tracks]
    for layer, place, track in zip(layers, reversed(placements), reversed(tracks), strict=True):
        clips = layer.findall("./clip")
        if len(clips) != 1:
            raise PixelsepError("the xges adapter split a track into several clips: its version may be unsupported")
        clip_element = clips[0]
        # Exact times (the adapter goes through floating-point seconds and can land a nanosecond short).
        start = _xges_nanoseconds(place.start_frames, rate)
        end = _xges_nanoseconds(place.end_frames, rate)
        clip_element.set("start", str(start))
        clip_element.set("duration", str(end - start))
        clip_element.set("inpoint", str(_xges_nanoseconds(place.in_frames, rate)))
        if track is None:
            continue
        # The audio source's own volume (what Pitivi's volume curve and GESAudioSource control) and, for a
        # muted track, the layer's audio switched off as a layer mute does it.
        mute = "true" if track.muted else "false"
        _sub(
            clip_element,
            "source",
            **{
                "track-id": audio_track_id,
                "children-properties": (
                    f"properties, GstVolume::volume=(double){track.gain!r}, GstVolume::mute=(boolean){mute};"
                ),
            },
        )
        if track.muted:
            layer.set("deactivated-tracks", audio_track_id)
    return _xml_bytes(root)


# ---------------------------------------------------------------------------------------------------
# Writing

_WRITERS: dict[str, Callable[[TimelineSpec], bytes]] = {
    ".otio": _otio_json,
    ".xml": _fcp7_xml,
    ".fcpxml": _fcpxml,
    ".kdenlive": _kdenlive,
    ".mlt": _mlt,
    ".xges": _xges,
}


def timeline_bytes(spec: TimelineSpec, suffix: str) -> bytes:
    """The timeline file's contents in the format of ``suffix`` (a key of :data:`TIMELINE_FORMATS`)."""
    writer = _WRITERS.get(suffix.lower())
    if writer is None:
        known = ", ".join(TIMELINE_FORMATS)
        raise InputError(f"unknown timeline format {suffix or '(no suffix)'!r}: name the output with one of {known}")
    return writer(spec)


def write_timeline(spec: TimelineSpec, out_path: Path | str) -> Path:
    """Write ``spec`` as a timeline in the format that ``out_path``'s suffix names; returns the path.

    Raises InputError (one line) for an unknown suffix or an output that is one of the timeline's media
    files, TimelineDependencyError when the format's optional package is missing. Written atomically.
    """
    from pixelsep_plugin.media.encode import atomic_destination

    out_path = Path(out_path)
    if out_path.suffix.lower() not in _WRITERS:
        timeline_bytes(spec, out_path.suffix)  # raises the one-line error
    media = [spec.clip.path, *(track.path for track in spec.audio_tracks)]
    data = timeline_bytes(spec, out_path.suffix)
    with atomic_destination(out_path, protect=media) as temp:
        temp.write_bytes(data)
    return out_path


def spec_from_recipe(recipe: Recipe, stems: dict[str, Path], residual: Path, num_audio_samples: int) -> TimelineSpec:
    """The timeline of a recipe whose stems are rendered: the picture, the clip's own sound (muted, kept),
    one track per source and the residual with the recipe's gains; mutes and solos become muted tracks.

    stems: source name -> its stem file; num_audio_samples: the stems' length (the clip's decoded audio)."""
    from pixelsep_plugin.recipe import linear_gains

    clip = describe_clip(recipe.clip.path)
    clip = TimelineClip(clip.path, Fraction(recipe.clip.frame_rate), clip.num_frames, clip.width, clip.height,
                        clip.sample_rate, clip.num_channels, int(num_audio_samples), clip.audio_offset_seconds)  # fmt: skip
    gains, residual_gain = linear_gains(recipe)
    tracks = [TimelineTrack("original", clip.path, 0.0, muted=True)]
    for source, gain in zip(recipe.sources, gains, strict=True):
        tracks.append(TimelineTrack(source.name, Path(stems[source.name]).absolute(), source.gain_db, muted=gain == 0))
    tracks.append(
        TimelineTrack("residual", Path(residual).absolute(), recipe.residual.gain_db, muted=residual_gain == 0)
    )
    return TimelineSpec(recipe.prefix, clip, tuple(tracks))


def export_timeline(
    separator: Separator,
    analysis: Analysis,
    recipe: Recipe,
    out_path: Path | str,
    stems_dir: Path | str | None = None,
    audio_format: str = "wav",
    progress: Callable[[str, float, float], None] | None = None,
) -> Path:
    """Render the recipe's stems and residual (float WAV or FLAC) into ``stems_dir`` (default: a folder
    ``<timeline name>-stems`` beside the timeline) and write the timeline that plays them."""
    from dataclasses import replace

    from pixelsep_plugin.api import render_recipe

    out_path = Path(out_path)
    if out_path.suffix.lower() not in _WRITERS:
        timeline_bytes(TimelineSpec("x", describe_clip(recipe.clip.path)), out_path.suffix)  # the one-line error
    if audio_format not in ("wav", "flac"):
        raise InputError(f"a timeline's stems are wav or flac, not {audio_format}")
    stems_dir = Path(stems_dir) if stems_dir is not None else out_path.with_name(out_path.stem + "-stems")
    recipe = replace(recipe, output=replace(recipe.output, residual=True))
    result = render_recipe(separator, analysis, recipe, stems_dir, stems=True, remix=False, audio_format=audio_format,
                           progress=progress)  # fmt: skip
    spec = spec_from_recipe(recipe, result.stems, result.residual, int(analysis.meta["media"]["num_samples"]))
    return write_timeline(spec, out_path)


__all__ = [
    "GAIN_EFFECT_NAME",
    "export_timeline",
    "spec_from_recipe",
    "MAX_GAIN_DB",
    "MIN_GAIN_DB",
    "TIMELINE_FORMATS",
    "Placement",
    "TimelineClip",
    "TimelineDependencyError",
    "TimelineSpec",
    "TimelineTrack",
    "build_otio_timeline",
    "describe_clip",
    "picture_placement",
    "timeline_bytes",
    "timeline_frames",
    "track_placement",
    "write_timeline",
]
