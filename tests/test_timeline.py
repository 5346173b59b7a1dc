"""Timelines for editors (host_bridge.timeline): every format written, read back, and rendered by real engines.

The clips are 2 s synthetic mp4s (make_test_clip). Each timeline holds the clip's own sound (muted) and
three stems plus a residual that sum to the clip's audio, each with a distinct tone so that gains show.
melt (MLT) renders the .mlt and .kdenlive files and ges-launch-1.0 (GStreamer Editing Services) the .xges
file; each render must equal the expected remix, sample for sample, at lag 0.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import correlate

from host_bridge.timeline import (
    GAIN_EFFECT_NAME,
    TIMELINE_FORMATS,
    Placement,
    TimelineClip,
    TimelineDependencyError,
    TimelineSpec,
    TimelineTrack,
    describe_clip,
    picture_placement,
    timeline_bytes,
    timeline_frames,
    track_placement,
    write_timeline,
)
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.media import make_test_clip, read_audio, write_audio

NTSC_FILM = Fraction(24000, 1001)
NTSC_VIDEO = Fraction(30000, 1001)
SECONDS = 2.0
WIDTH, HEIGHT = 64, 48
# (name, gain dB, muted, share of the clip's audio, tone Hz); the residual carries minus every tone.
STEMS = [("drums", 6.0, False, 0.4, 220.0), ("voice", -12.0, False, 0.3, 330.0), ("bass", 0.0, True, 0.2, 550.0)]
RESIDUAL = ("residual", -3.0, False, 0.1)
TONE_AMPLITUDE = 0.05


@dataclass(frozen=True)
class Media:
    """A clip, its stems on disk and the timeline that uses them."""

    spec: TimelineSpec
    stems: np.ndarray  # float32 (num_tracks, channels, n): the audio of each spec track but the first
    directory: Path

    @property
    def clip(self) -> TimelineClip:
        return self.spec.clip


def make_media(directory: Path, frame_rate: Fraction, sample_rate: int, offset_frames: int) -> Media:
    """A test clip at ``frame_rate``, stems that sum to its decoded audio, and the timeline spec."""
    directory.mkdir(parents=True, exist_ok=True)
    num_frames = round(SECONDS * frame_rate)
    clip_path = make_test_clip(
        directory / "clip.mp4", seconds=SECONDS, width=WIDTH, height=HEIGHT, fps=frame_rate, sample_rate=sample_rate
    )
    audio, rate = read_audio(clip_path)
    assert rate == sample_rate
    t = np.arange(audio.shape[1]) / sample_rate
    tones = [TONE_AMPLITUDE * np.sin(2 * np.pi * hz * t).astype(np.float32) for *_, hz in STEMS]
    stems = [share * audio + tone for (_, _, _, share, _), tone in zip(STEMS, tones, strict=True)]
    stems.append(RESIDUAL[3] * audio - sum(tones))
    np.testing.assert_allclose(sum(stems), audio, atol=1e-6)  # stems + residual == the clip's audio
    tracks = [TimelineTrack("Original sound", clip_path, 0.0, muted=True)]
    for (name, gain_db, muted, *_), samples in zip([*STEMS, RESIDUAL], stems, strict=True):
        path = write_audio(directory / f"{name}.wav", samples, sample_rate)
        tracks.append(TimelineTrack(name, path.absolute(), gain_db, muted))
    clip = TimelineClip(
        path=clip_path.absolute(),
        frame_rate=frame_rate,
        num_frames=num_frames,
        width=WIDTH,
        height=HEIGHT,
        sample_rate=sample_rate,
        num_channels=audio.shape[0],
        num_audio_samples=audio.shape[1],
        audio_offset_seconds=float(offset_frames / frame_rate),
    )
    return Media(TimelineSpec("duet", clip, tuple(tracks)), np.stack(stems), directory)


# (frame rate, sample rate, audio offset in frames): offsets whose sample counts are whole, so that the
# expected remix is exact; a negative offset trims the stems' start.
CONFIGS = {
    "23.976": (NTSC_FILM, 48000, 0),
    "29.97": (NTSC_VIDEO, 48000, 5),
    "25": (Fraction(25), 44100, 2),
    "30": (Fraction(30), 48000, -3),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def media(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Media:
    frame_rate, sample_rate, offset_frames = CONFIGS[request.param]
    return make_media(tmp_path_factory.mktemp(f"timeline{request.param}"), frame_rate, sample_rate, offset_frames)


def expected_remix(media: Media) -> np.ndarray:
    """float64 (channels, n): sum of gain * stem over the unmuted stem tracks, placed as the timeline places them."""
    clip = media.clip
    samples_per_frame = Fraction(clip.sample_rate) / clip.frame_rate
    total = timeline_frames(media.spec) * samples_per_frame
    assert total.denominator == 1, "test configurations keep frame boundaries on whole samples"
    remix = np.zeros((clip.num_channels, int(total)))
    for track, stem in zip(media.spec.audio_tracks[1:], media.stems, strict=True):
        if track.muted:
            continue
        place = track_placement(media.spec, track)
        start, source, length = (
            int(frames * samples_per_frame) for frames in (place.start_frames, place.in_frames, place.num_frames)
        )
        remix[:, start : start + length] += track.gain * stem[:, source : source + length]
    return remix


def lag_and_snr(rendered: np.ndarray, expected: np.ndarray) -> tuple[int, float, float]:
    """(lag of rendered behind expected in samples, SNR in dB at lag 0, largest absolute error at lag 0)."""
    assert rendered.shape == expected.shape, f"render is {rendered.shape}, expected {expected.shape}"
    correlation = correlate(rendered[0], expected[0], mode="full", method="fft")
    lag = int(np.argmax(correlation)) - (expected.shape[1] - 1)
    error = rendered - expected
    snr = 10 * np.log10(np.sum(expected**2) / max(float(np.sum(error**2)), 1e-30))
    return lag, float(snr), float(np.abs(error).max())


# ---------------------------------------------------------------------------------------------------
# The description and the placements


def spec_for(tmp_path: Path, **clip_changes: object) -> TimelineSpec:
    clip_fields: dict = dict(
        path=tmp_path / "clip.mp4",
        frame_rate=NTSC_FILM,
        num_frames=48,
        width=WIDTH,
        height=HEIGHT,
        sample_rate=48000,
        num_channels=2,
        num_audio_samples=96256,
    )
    clip_fields.update(clip_changes)
    clip = TimelineClip(**clip_fields)
    tracks = (TimelineTrack("Original sound", clip.path, muted=True), TimelineTrack("drums", tmp_path / "drums.wav"))
    return TimelineSpec("duet", clip, tracks)


def test_frame_rate_is_kept_exact(tmp_path: Path) -> None:
    assert spec_for(tmp_path, frame_rate="24000/1001").clip.frame_rate == NTSC_FILM
    assert spec_for(tmp_path, frame_rate=25).clip.frame_rate == Fraction(25)
    assert float(NTSC_FILM) == 23.976023976023978


@pytest.mark.parametrize(
    ("frame_rate", "sample_rate", "num_samples", "offset_seconds", "stems", "picture"),
    [
        # 96256 samples at 48 kHz = 2.0053 s = 48.08 frames at 23.976: 48 whole frames
        (NTSC_FILM, 48000, 96256, 0.0, Placement(0, 0, 48), Placement(0, 0, 48)),
        # 1001/24000 s = exactly one frame at 23.976
        (NTSC_FILM, 48000, 96256, 1001 / 24000, Placement(1, 0, 48), Placement(0, 0, 48)),
        # 0.1 s = 2.997 frames at 29.97: rounded to 3; audio 2.0 s = 59.94 frames: 59
        (NTSC_VIDEO, 48000, 96000, 0.1, Placement(3, 0, 59), Placement(0, 0, 48)),
        # audio 0.08 s before the picture at 25 fps: the audio starts the timeline, the picture 2 frames in
        (Fraction(25), 44100, 89088, -0.08, Placement(0, 0, 50), Placement(2, 0, 48)),
        (Fraction(30), 48000, 96000, 0.0, Placement(0, 0, 60), Placement(0, 0, 48)),
    ],
)
def test_track_placement(
    tmp_path: Path,
    frame_rate: Fraction,
    sample_rate: int,
    num_samples: int,
    offset_seconds: float,
    stems: Placement,
    picture: Placement,
) -> None:
    spec = spec_for(
        tmp_path,
        frame_rate=frame_rate,
        sample_rate=sample_rate,
        num_audio_samples=num_samples,
        audio_offset_seconds=offset_seconds,
    )
    assert track_placement(spec, spec.audio_tracks[1]) == stems
    # the clip's own sound goes where the picture goes
    assert track_placement(spec, spec.audio_tracks[0]) == picture_placement(spec) == picture
    assert timeline_frames(spec) == max(picture.end_frames, stems.end_frames)


def test_bad_specs_are_one_line_input_errors(tmp_path: Path) -> None:
    cases = [
        lambda: spec_for(tmp_path, path=Path("relative/clip.mp4")),
        lambda: spec_for(tmp_path, frame_rate="fast"),
        lambda: spec_for(tmp_path, frame_rate=0),
        lambda: spec_for(tmp_path, frame_rate=23.976),  # not exact
        lambda: spec_for(tmp_path, num_frames=0),
        lambda: spec_for(tmp_path, sample_rate=44100.0),
        lambda: spec_for(tmp_path, audio_offset_seconds=math.nan),
        lambda: spec_for(tmp_path, num_audio_samples=2000),  # under one frame of audio
        lambda: TimelineTrack("drums", tmp_path / "drums.wav", gain_db=18.0),
        lambda: TimelineTrack("", tmp_path / "drums.wav"),
        lambda: TimelineTrack("drums", tmp_path / "drums.wav", gain_db="loud"),
        lambda: TimelineTrack("drums", Path("drums.wav")),
        lambda: TimelineSpec("duet", spec_for(tmp_path).clip, ()),
        lambda: TimelineSpec("duet", spec_for(tmp_path).clip, (TimelineTrack("a", tmp_path / "a.wav"),) * 2),
        lambda: write_timeline(spec_for(tmp_path), tmp_path / "duet.edl"),
        lambda: write_timeline(spec_for(tmp_path), tmp_path / "duet"),
        lambda: timeline_bytes(spec_for(tmp_path), ".aaf"),
    ]
    for case in cases:
        with pytest.raises(InputError) as raised:
            case()
        assert "\n" not in str(raised.value) and str(raised.value)
    assert not list(tmp_path.iterdir())  # nothing was written


def test_writes_atomically_and_every_suffix_is_known(tmp_path: Path) -> None:
    spec = spec_for(tmp_path)
    assert set(TIMELINE_FORMATS) == {".otio", ".xml", ".fcpxml", ".kdenlive", ".mlt", ".xges"}
    out = tmp_path / "duet.MLT"  # suffixes are matched without case
    assert write_timeline(spec, out) == out
    assert out.read_bytes() == timeline_bytes(spec, ".mlt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["duet.MLT"]  # no temp file left behind


def test_formats_without_opentimelineio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentimelineio", None)  # as if the "timeline" extra were not installed
    spec = spec_for(tmp_path)
    for suffix in (".mlt", ".kdenlive", ".fcpxml"):  # written by this module alone
        assert timeline_bytes(spec, suffix).startswith(b"<?xml")
    for suffix in (".otio", ".xml", ".xges"):
        with pytest.raises(TimelineDependencyError, match=r"pixelsep\[timeline\]"):
            timeline_bytes(spec, suffix)


def test_describe_clip(tmp_path: Path) -> None:
    path = make_test_clip(tmp_path / "clip.mp4", seconds=1.0, width=WIDTH, height=HEIGHT, fps=NTSC_VIDEO)
    clip = describe_clip(path)
    assert clip.path.is_absolute() and clip.frame_rate == NTSC_VIDEO
    assert (clip.width, clip.height, clip.num_frames, clip.num_channels) == (WIDTH, HEIGHT, 30, 2)
    assert clip.sample_rate == 44100 and clip.num_audio_samples > 0


# ---------------------------------------------------------------------------------------------------
# Each format, read back


def rational(text: str) -> Fraction:
    """FCPXML time "1001/24000s" -> Fraction seconds."""
    assert text.endswith("s"), text
    return Fraction(text[:-1])


def frames_of(text: str, frame_rate: Fraction) -> int:
    frames = rational(text) * frame_rate
    assert frames.denominator == 1, f"{text} is not on a frame boundary at {frame_rate}"
    return int(frames)


def audio_tracks(media: Media) -> list[TimelineTrack]:
    return list(media.spec.audio_tracks)


def test_otio_round_trip(media: Media, tmp_path: Path) -> None:
    otio = pytest.importorskip("opentimelineio")
    path = write_timeline(media.spec, tmp_path / "duet.otio")
    timeline = otio.adapters.read_from_file(str(path))
    rate = float(media.clip.frame_rate)
    assert timeline.name == "duet" and timeline.global_start_time.rate == rate
    video, *audio = timeline.tracks
    assert video.kind == otio.schema.TrackKind.Video and video.name == "Picture"
    picture = video[-1]
    assert picture.source_range.start_time == otio.opentime.RationalTime(0, rate)
    assert picture.source_range.duration == otio.opentime.RationalTime(media.clip.num_frames, rate)
    picture_start = video.range_of_child_at_index(len(video) - 1).start_time
    assert picture_start == otio.opentime.RationalTime(picture_placement(media.spec).start_frames, rate)
    assert [track.name for track in audio] == [track.name for track in audio_tracks(media)]
    for track_item, track in zip(audio, audio_tracks(media), strict=True):
        assert track_item.kind == otio.schema.TrackKind.Audio
        assert track_item.enabled is (not track.muted)
        place = track_placement(media.spec, track)
        clip_item = track_item[-1]
        assert clip_item.source_range.start_time.rate == rate  # exactly 24000/1001 as a double, not 23.976
        assert clip_item.source_range.start_time.value == place.in_frames
        assert clip_item.source_range.duration.value == place.num_frames
        assert track_item.range_of_child_at_index(len(track_item) - 1).start_time.value == place.start_frames
        assert clip_item.media_reference.target_url == track.path.as_uri()
        (effect,) = clip_item.effects
        assert effect.effect_name == GAIN_EFFECT_NAME
        assert effect.metadata["pixelsep"]["gain_db"] == track.gain_db
        assert math.isclose(effect.metadata["pixelsep"]["gain"], 10 ** (track.gain_db / 20))
        # seconds are exact multiples of the frame duration
        seconds = clip_item.source_range.duration.to_seconds()
        assert math.isclose(seconds, float(place.num_frames / media.clip.frame_rate), rel_tol=1e-12)


def test_fcp7_xml(media: Media, tmp_path: Path) -> None:
    otio = pytest.importorskip("opentimelineio")
    pytest.importorskip("otio_fcp_adapter")
    path = write_timeline(media.spec, tmp_path / "duet.xml")
    root = ET.parse(path).getroot()
    timebase = math.ceil(media.clip.frame_rate)
    ntsc = "FALSE" if media.clip.frame_rate == timebase else "TRUE"
    for rate in root.iter("rate"):
        assert (rate.findtext("timebase"), rate.findtext("ntsc")) == (str(timebase), ntsc)
    sequence = root.find("./project/children/sequence")
    assert sequence is not None
    assert sequence.findtext("./media/video/format/samplecharacteristics/width") == str(WIDTH)
    for clip_item in sequence.iter("clipitem"):
        assert len(clip_item.findall("./rate")) == 1
    track_elements = sequence.findall("./media/audio/track")
    assert len(track_elements) == len(audio_tracks(media))
    for track_element, track in zip(track_elements, audio_tracks(media), strict=True):
        assert track_element.findtext("./enabled") == ("FALSE" if track.muted else "TRUE")
        (clip_item,) = track_element.findall("./clipitem")
        assert clip_item.findtext("./enabled") == ("FALSE" if track.muted else "TRUE")
        level = clip_item.findtext("./filter/effect/parameter/value")
        assert math.isclose(float(level), 10 ** (track.gain_db / 20), rel_tol=1e-5)
        assert clip_item.findtext("./sourcetrack/mediatype") == "audio"
    # ... and as OpenTimelineIO's FCP 7 reader sees it
    timeline = otio.adapters.read_from_file(str(path))
    video, *audio = timeline.tracks
    assert video[-1].source_range.duration.value == media.clip.num_frames
    assert video[-1].source_range.duration.rate == float(media.clip.frame_rate)
    start = video.range_of_child_at_index(len(video) - 1).start_time.value
    assert start == picture_placement(media.spec).start_frames
    for track_item, track in zip(audio, audio_tracks(media), strict=True):
        place = track_placement(media.spec, track)
        clip_item = track_item[-1]
        assert clip_item.name == track.name
        assert (clip_item.source_range.start_time.value, clip_item.source_range.duration.value) == (
            place.in_frames,
            place.num_frames,
        )
        assert track_item.range_of_child_at_index(len(track_item) - 1).start_time.value == place.start_frames
        (effect,) = clip_item.effects
        assert effect.name == "Audio Levels"
        value = float(effect.metadata["fcp_xml"]["parameter"]["value"])
        assert math.isclose(value, 10 ** (track.gain_db / 20), rel_tol=1e-5)


def test_fcpxml(media: Media, tmp_path: Path) -> None:
    path = write_timeline(media.spec, tmp_path / "duet.fcpxml")
    root = ET.parse(path).getroot()
    rate = media.clip.frame_rate
    (video_format,) = root.findall("./resources/format")
    assert rational(video_format.get("frameDuration", "")) == 1 / rate
    sequence = root.find("./library/event/project/sequence")
    assert sequence is not None and frames_of(sequence.get("duration", ""), rate) == timeline_frames(media.spec)
    (picture,) = sequence.findall("./spine/asset-clip")
    assert frames_of(picture.get("duration", ""), rate) == media.clip.num_frames
    lead = picture_placement(media.spec).start_frames
    assert frames_of(picture.get("offset", ""), rate) == lead
    # the audio clips hang below the first spine item: a gap when the audio starts before the picture
    first = sequence.find("./spine")[0]
    assert first.tag == ("gap" if lead else "asset-clip")
    connected = first.findall("./asset-clip")
    assert [item.get("name") for item in connected] == [track.name for track in audio_tracks(media)]
    assets = {asset.get("id"): asset for asset in root.findall("./resources/asset")}
    for lane, (item, track) in enumerate(zip(connected, audio_tracks(media), strict=True), start=1):
        place = track_placement(media.spec, track)
        assert item.get("lane") == str(-lane) and item.get("srcEnable") == "audio"
        assert frames_of(item.get("offset", ""), rate) == place.start_frames
        assert frames_of(item.get("start", ""), rate) == place.in_frames
        assert frames_of(item.get("duration", ""), rate) == place.num_frames
        assert item.get("enabled") == ("0" if track.muted else "1")
        assert item.find("./adjust-volume").get("amount") == f"{track.gain_db:g}dB"
        assert assets[item.get("ref")].get("src") == track.path.as_uri()
    otio = pytest.importorskip("opentimelineio")
    pytest.importorskip("otio_fcpx_xml_adapter")
    if rate.denominator != 1:
        return  # the FCP X reader keeps only int(rate) (23 for 23.976), so it cannot read NTSC timings back
    (timeline,) = otio.adapters.read_from_file(str(path))
    tracks_by_name = {item.name: track for track in timeline.tracks for item in track if item.name}
    for track in audio_tracks(media):
        place = track_placement(media.spec, track)
        track_item = tracks_by_name[track.name]
        clip_item = track_item[-1]
        assert (clip_item.source_range.start_time.value, clip_item.source_range.duration.value) == (
            place.in_frames,
            place.num_frames,
        )
        assert track_item.range_of_child_at_index(len(track_item) - 1).start_time.value == place.start_frames


def mlt_tracks(root: ET.Element, tractor: ET.Element) -> list[tuple[str, str | None]]:
    return [(track.get("producer", ""), track.get("hide")) for track in tractor.iter("track")]


def playlist_summary(playlist: ET.Element) -> list[tuple]:
    """(("blank", length) | ("entry", in, out, volume dB)) for each child of an MLT playlist."""
    summary: list[tuple] = []
    for child in playlist:
        if child.tag == "blank":
            summary.append(("blank", int(child.get("length", ""))))
        elif child.tag == "entry":
            level = child.findtext("./filter/property[@name='level']")
            summary.append(("entry", int(child.get("in", "")), int(child.get("out", "")), level))
    return summary


def expected_playlist(media: Media, track: TimelineTrack) -> list[tuple]:
    place = track_placement(media.spec, track)
    blank = [("blank", place.start_frames)] if place.start_frames else []
    return [*blank, ("entry", place.in_frames, place.in_frames + place.num_frames - 1, f"{track.gain_db:g}")]


def test_mlt_structure(media: Media, tmp_path: Path) -> None:
    root = ET.parse(write_timeline(media.spec, tmp_path / "duet.mlt")).getroot()
    rate = media.clip.frame_rate
    profile = root.find("./profile")
    assert profile is not None
    assert (profile.get("frame_rate_num"), profile.get("frame_rate_den")) == (
        str(rate.numerator),
        str(rate.denominator),
    )
    (tractor,) = root.findall("./tractor")
    assert tractor.get("out") == str(timeline_frames(media.spec) - 1)
    tracks = audio_tracks(media)
    expected = [("background", None), ("playlist_picture", "audio")] + [
        (f"playlist_audio{index}", "both" if track.muted else "video") for index, track in enumerate(tracks)
    ]
    assert mlt_tracks(root, tractor) == expected
    mixes = [t for t in tractor.findall("./transition") if t.findtext("./property[@name='mlt_service']") == "mix"]
    assert [int(t.findtext("./property[@name='b_track']") or -1) for t in mixes] == list(range(2, 2 + len(tracks)))
    assert all(t.findtext("./property[@name='sum']") == "1" for t in mixes)
    picture = picture_placement(media.spec)
    assert playlist_summary(root.find("./playlist[@id='playlist_picture']")) == [
        *([("blank", picture.start_frames)] if picture.start_frames else []),
        ("entry", 0, picture.num_frames - 1, None),
    ]
    for index, track in enumerate(tracks):
        playlist = root.find(f"./playlist[@id='playlist_audio{index}']")
        assert playlist is not None and playlist.findtext("./property[@name='shotcut:name']") == track.name
        assert playlist_summary(playlist) == expected_playlist(media, track)
        producer = root.find(f"./producer[@id='{playlist.find('./entry').get('producer')}']")
        assert producer.findtext("./property[@name='resource']") == str(track.path)


def test_kdenlive_structure(media: Media, tmp_path: Path) -> None:
    root = ET.parse(write_timeline(media.spec, tmp_path / "duet.kdenlive")).getroot()
    assert root.get("producer") == "main_bin"
    main_bin = root.find("./playlist[@id='main_bin']")
    assert main_bin is not None and main_bin.findtext("./property[@name='kdenlive:docproperties.version']") == "1"
    bin_ids = {}
    for entry in main_bin.findall("./entry"):
        producer = root.find(f"./producer[@id='{entry.get('producer')}']")
        bin_ids[producer.findtext("./property[@name='resource']")] = producer.findtext(
            "./property[@name='kdenlive:id']"
        )
    assert set(bin_ids) == {str(media.clip.path), *(str(track.path) for track in audio_tracks(media))}
    tractors = root.findall("./tractor")
    main = tractors[-1]  # Kdenlive's main tractor is the last one
    tracks = audio_tracks(media)
    expected = [("black_track", None)]
    expected += [(f"tractor_audio{i}", "both" if tracks[i].muted else "video") for i in reversed(range(len(tracks)))]
    expected += [("tractor_picture", "audio")]
    assert mlt_tracks(root, main) == expected
    assert main.get("out") == str(timeline_frames(media.spec) - 1)
    for index, track in enumerate(tracks):
        tractor = root.find(f"./tractor[@id='tractor_audio{index}']")
        assert tractor.findtext("./property[@name='kdenlive:track_name']") == track.name
        assert tractor.findtext("./property[@name='kdenlive:audio_track']") == "1"
        inner = [(t.get("producer"), t.get("hide")) for t in tractor.findall("./track")]
        hide = "both" if track.muted else "video"
        assert inner == [(f"tractor_audio{index}_a", hide), (f"tractor_audio{index}_b", hide)]
        playlist = root.find(f"./playlist[@id='tractor_audio{index}_a']")
        assert playlist_summary(playlist) == expected_playlist(media, track)
        entry = playlist.find("./entry")
        assert entry.findtext("./property[@name='kdenlive:id']") == bin_ids[str(track.path)]
        assert entry.findtext("./filter/property[@name='kdenlive_id']") == "volume"
    internal = [t for t in main.findall("./transition") if t.findtext("./property[@name='internal_added']") == "237"]
    services = sorted(t.findtext("./property[@name='mlt_service']") for t in internal)
    assert services == ["mix"] * len(tracks) + ["qtblend"]


def test_xges(media: Media, tmp_path: Path) -> None:
    otio = pytest.importorskip("opentimelineio")
    pytest.importorskip("otio_xges_adapter")
    path = write_timeline(media.spec, tmp_path / "duet.xges")
    root = ET.parse(path).getroot()
    rate = media.clip.frame_rate
    video_track = root.find("./project/timeline/track[@track-type='4']")
    assert f"framerate\\=\\(fraction\\){rate.numerator}/{rate.denominator}" in video_track.get("properties", "")
    audio_track = root.find("./project/timeline/track[@track-type='2']")
    assert f"rate\\=\\(int\\){media.clip.sample_rate}" in audio_track.get("properties", "")
    layers = root.findall("./project/timeline/layer")
    tracks = audio_tracks(media)
    assert len(layers) == 1 + len(tracks)

    def nanoseconds(frames: int) -> int:
        return math.floor(Fraction(frames * 10**9) / rate)

    for layer, track in zip(layers, reversed(tracks), strict=False):  # the last track is layer 0
        (clip_element,) = layer.findall("./clip")
        place = track_placement(media.spec, track)
        assert int(clip_element.get("start", "")) == nanoseconds(place.start_frames)
        assert int(clip_element.get("inpoint", "")) == nanoseconds(place.in_frames)
        assert int(clip_element.get("duration", "")) == nanoseconds(place.end_frames) - nanoseconds(place.start_frames)
        properties = clip_element.find("./source").get("children-properties", "")
        assert f"GstVolume::volume=(double){10 ** (track.gain_db / 20)!r}" in properties
        assert f"GstVolume::mute=(boolean){'true' if track.muted else 'false'}" in properties
        assert layer.get("deactivated-tracks") == ("1" if track.muted else None)
    # ... and as OpenTimelineIO's xges reader sees it (it drops the volumes and mutes)
    timeline = otio.adapters.read_from_file(str(path))
    by_name = {track[-1].name: track for track in timeline.tracks}
    assert set(by_name) == {"clip", *(track.name for track in tracks)}
    for track in tracks:
        place = track_placement(media.spec, track)
        track_item = by_name[track.name]
        assert track_item.kind == otio.schema.TrackKind.Audio
        clip_range = track_item.range_of_child_at_index(len(track_item) - 1)
        assert clip_range.start_time.rate == float(rate)
        assert abs(clip_range.start_time.value - place.start_frames) < 1e-6  # within a nanosecond
        assert abs(clip_range.duration.value - place.num_frames) < 1e-6


# ---------------------------------------------------------------------------------------------------
# Real engines render the timelines


def render_with_melt(timeline: Path, out: Path, media: Media) -> np.ndarray:
    if shutil.which("melt") is None:
        pytest.skip("melt (MLT) is not installed: apt-get install melt")
    command = [
        "melt",
        str(timeline),
        "-consumer",
        f"avformat:{out}",
        "acodec=pcm_f32le",
        f"ar={media.clip.sample_rate}",
        f"ac={media.clip.num_channels}",
        "vn=1",
        "real_time=0",  # every frame, none dropped
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and out.exists(), result.stderr[-2000:]
    samples, sample_rate = read_audio(out)
    assert sample_rate == media.clip.sample_rate
    return samples


def render_with_ges(timeline: Path, out: Path, media: Media) -> np.ndarray:
    if shutil.which("ges-launch-1.0") is None:
        pytest.skip("ges-launch-1.0 is not installed: apt-get install ges1.0-tools gstreamer1.0-libav")
    command = [
        "ges-launch-1.0",
        "--load",
        str(timeline),
        "--track-types",
        "audio",
        "--outputuri",
        out.as_uri(),
        "--format",
        "audio/x-wav:audio/x-raw,format=F32LE",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and out.exists() and out.stat().st_size > 44, result.stdout[-2000:]
    samples, sample_rate = read_audio(out)
    assert sample_rate == media.clip.sample_rate
    return samples


@pytest.mark.parametrize(
    ("suffix", "render"), [(".mlt", render_with_melt), (".kdenlive", render_with_melt), (".xges", render_with_ges)]
)
def test_engine_renders_the_remix(media: Media, tmp_path: Path, suffix: str, render) -> None:
    if suffix == ".xges":
        pytest.importorskip("otio_xges_adapter")
    timeline = write_timeline(media.spec, tmp_path / f"duet{suffix}")
    rendered = render(timeline, tmp_path / "render.wav", media)
    expected = expected_remix(media)
    lag, snr, max_error = lag_and_snr(rendered, expected)
    assert lag == 0
    # Both engines mix in 32-bit float here: what is left is float rounding (measured: melt ~146 dB, GES exact).
    assert snr > 100.0 and max_error < 1e-5, f"SNR {snr:.1f} dB, largest error {max_error:.2e}"
