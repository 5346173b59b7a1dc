"""A corpus of awkward inputs for the CLI, made with PyAV in a folder (nothing downloaded).

``make_corpus(folder)`` writes every file and returns one :class:`Case` per input: the file, how it
was made, where to click, and what each command should do with it: ``"ok"`` or the refusal, as a
substring of the one-line error. Clips are short (at most 3 s) with small frames (the 4K one has
three frames at a tiny bitrate), so the corpus builds in a few seconds.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pixelsep_plugin.media.encode import tone_pair

CASE_NAMES = (
    "plain", "mono-8k", "surround-96k", "variable-frame-rate", "rotated-phone", "4k", "odd-size", "yuv444p",
    "yuv422p10le", "gray", "shorter-than-a-window", "several-audio-streams", "audio-starts-late", "picture-starts-late",
    "audio-shorter",
    "audio-longer", "silence", "clipping", "nan-inf-float-audio", "truncated-half", "moov-lost", "zero-bytes",
    "text-named-mp4", "mp4-named-mkv", "no-audio", "audio-only-m4a", "audio-only-wav", "fifo", "folder-named-mp4",
    "spaces-and-non-ascii", "symlink", "dangling-symlink", "character-device", "read-only",
)  # fmt: skip
COMMANDS = ("analyze", "separate", "heatmap", "remix", "render", "timeline")


@dataclass(frozen=True)
class Case:
    """One awkward input.

    name: the test id.
    path: the file (or special file, folder, link) given to the commands as the clip.
    made: how it was made, in a few words.
    expect: command -> "ok", or a substring of the expected one-line error (a refusal).
        Commands missing here follow ``default``.
    default: what commands not in ``expect`` should do ("ok" or an error substring).
    point: (x, y) in display pixels, a click inside the frame.
    time_seconds: when to click (seconds on the picture's clock).
    audio_seconds: how long the clip's sound lasts (s), for checking stem lengths (None: not checked).
    audio_offset_seconds: where the sound starts on the picture's clock (s).
    sample_rate, num_channels: the clip's audio, for checking the stems (0: not checked).
    """

    name: str
    path: Path
    made: str
    default: str = "ok"
    expect: dict[str, str] = field(default_factory=dict)
    point: tuple[int, int] = (40, 60)
    time_seconds: float = 0.5
    audio_seconds: float | None = None
    audio_offset_seconds: float = 0.0
    sample_rate: int = 0
    num_channels: int = 0

    def expected(self, command: str) -> str:
        """'ok' or the substring of the error ``command`` should end with."""
        return self.expect.get(command, self.default)


def _picture(width: int, height: int, index: int, fps: float) -> np.ndarray:
    """RGB uint8 (height, width, 3): a grey gradient, a red block left and a blue block right that bob."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = (60 + 80 * x / max(width, 1)).astype(np.uint8)
    rgb[..., 1] = (60 + 80 * y / max(height, 1)).astype(np.uint8)
    rgb[..., 2] = 90
    bob = int(round(0.05 * height * np.sin(2 * np.pi * index / max(fps, 1.0))))
    top, bottom = max(0, height // 3 + bob), min(height, 2 * height // 3 + bob)
    rgb[top:bottom, width // 8 : width // 3] = (220, 30, 30)
    rgb[top:bottom, 2 * width // 3 : 7 * width // 8] = (30, 30, 220)
    return rgb


@dataclass
class _Audio:
    samples: np.ndarray  # float32 (channels, n)
    sample_rate: int
    layout: str
    codec: str = "aac"
    start_seconds: float = 0.0
    sample_format: str = "fltp"  # what the samples are handed to the encoder as


def _write(
    path: Path,
    muxer: str,
    *,
    width: int = 160,
    height: int = 120,
    fps: int = 25,
    seconds: float | None = 2.0,
    video_codec: str | None = "libx264",
    pix_fmt: str = "yuv420p",
    rotation_degrees: int = 0,
    frame_times: list[float] | None = None,
    audios: tuple[_Audio, ...] = (),
    video_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode a picture (``seconds`` at ``fps``, or at the irregular ``frame_times``) and audio streams."""
    with av.open(str(path), mode="w", format=muxer, options=container_options or {}) as container:
        vstream = None
        if video_codec is not None:
            vstream = container.add_stream(video_codec, rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
            if video_codec == "libx264":
                vstream.options = {"preset": "ultrafast", "crf": "30", **(video_options or {})}
            if frame_times is not None:
                vstream.codec_context.time_base = Fraction(1, 1000)
            if rotation_degrees:
                vstream.set_display_rotation(-rotation_degrees)  # PyAV takes counter-clockwise degrees
        astreams = []
        for audio in audios:
            stream = container.add_stream(audio.codec, rate=audio.sample_rate, layout=audio.layout)
            if audio.codec == "flac":
                stream.format = "s32"
            elif audio.codec == "pcm_f32le":
                stream.format = "flt"
            astreams.append(stream)
        if vstream is not None:
            times = frame_times if frame_times is not None else [i / fps for i in range(int(round(seconds * fps)))]
            for index, t in enumerate(times):
                frame = av.VideoFrame.from_ndarray(_picture(width, height, index, fps), format="rgb24")
                frame = frame.reformat(format=pix_fmt)
                frame.pts = int(round(t * 1000)) if frame_times is not None else index
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode(None):
                container.mux(packet)
        for audio, stream in zip(audios, astreams, strict=True):
            offset = int(round(audio.start_seconds * audio.sample_rate))
            block = 1024
            for start in range(0, audio.samples.shape[1], block):
                chunk = np.ascontiguousarray(audio.samples[:, start : start + block], dtype=np.float32)
                if audio.sample_format in ("flt", "s16"):  # packed: one plane, channels interleaved
                    chunk = np.ascontiguousarray(chunk.T.reshape(1, -1))
                if audio.sample_format == "s16":
                    chunk = np.round(np.clip(chunk, -1, 1) * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(chunk, format=audio.sample_format, layout=audio.layout)
                frame.sample_rate = audio.sample_rate
                frame.pts = offset + start
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def _tones(seconds: float, sample_rate: int = 44100, num_channels: int = 2) -> np.ndarray:
    return tone_pair(seconds, sample_rate, num_channels)


def _stereo(seconds: float = 2.0, **kwargs) -> _Audio:
    return _Audio(_tones(seconds), 44100, "stereo", **kwargs)


def make_corpus(folder: Path | str) -> list[Case]:
    """Write the awkward inputs into ``folder`` (created) and return their cases."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    ok = {"sample_rate": 44100, "num_channels": 2}

    def add(case: Case) -> None:
        cases.append(case)

    plain = _write(folder / "plain.mp4", "mp4", audios=(_stereo(),))
    add(Case("plain", plain, "H.264 160x120 25 fps + AAC stereo 44.1 kHz, 2 s", audio_seconds=2.0, **ok))

    add(Case(
        "mono-8k",
        _write(folder / "mono-8k.mp4", "mp4", audios=(_Audio(_tones(2.0, 8000, 1), 8000, "mono"),)),
        "AAC mono at 8 kHz", audio_seconds=2.0, sample_rate=8000, num_channels=1,
    ))  # fmt: skip
    add(Case(
        "surround-96k",
        _write(folder / "surround-96k.mkv", "matroska", audios=(_Audio(_tones(2.0, 96000, 6), 96000, "5.1", "flac"),)),
        "FLAC 5.1 at 96 kHz in Matroska", audio_seconds=2.0, sample_rate=96000, num_channels=6,
    ))  # fmt: skip
    irregular = sorted({round(t, 3) for t in np.cumsum(np.r_[0.0, np.tile([0.02, 0.06, 0.04, 0.1], 12)]) if t < 2.0})
    add(Case(
        "variable-frame-rate",
        _write(folder / "vfr.mkv", "matroska", frame_times=irregular, audios=(_stereo(),)),
        "frames at irregular times (20-100 ms apart)", audio_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "rotated-phone",
        _write(folder / "rotated.mp4", "mp4", rotation_degrees=90, audios=(_stereo(),)),
        "coded 160x120 with a 90 degree display matrix (shown 120x160)", point=(60, 130), audio_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "4k",
        _write(folder / "4k.mp4", "mp4", width=3840, height=2160, fps=3, seconds=1.0, audios=(_stereo(1.0),),
               video_options={"crf": "51"}),
        "3840x2160, 3 frames, crf 51", point=(1900, 1000), audio_seconds=1.0, **ok,
    ))  # fmt: skip
    add(Case(
        "odd-size",
        _write(folder / "odd-161x97.mkv", "matroska", width=161, height=97, pix_fmt="yuv444p", audios=(_stereo(),)),
        "161x97 H.264 yuv444p", point=(80, 48), audio_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "yuv444p",
        _write(folder / "yuv444p.mp4", "mp4", pix_fmt="yuv444p", audios=(_stereo(),)),
        "H.264 4:4:4", audio_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "yuv422p10le",
        _write(folder / "yuv422p10.mkv", "matroska", video_codec="ffv1", pix_fmt="yuv422p10le", audios=(_stereo(),)),
        "FFV1 4:2:2 10-bit", audio_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "gray",
        _write(folder / "gray.mkv", "matroska", video_codec="ffv1", pix_fmt="gray", audios=(_stereo(),)),
        "FFV1 8-bit greyscale", audio_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "shorter-than-a-window",
        _write(folder / "short.mp4", "mp4", seconds=0.3, audios=(_stereo(0.3),)),
        "0.3 s: shorter than one analysis window", time_seconds=0.1, audio_seconds=0.3, **ok,
    ))  # fmt: skip
    add(Case(
        "several-audio-streams",
        _write(folder / "two-audio.mkv", "matroska",
               audios=(_stereo(), _Audio(_tones(2.0, 48000, 1), 48000, "mono"))),
        "two audio streams (stereo 44.1 kHz, mono 48 kHz): the first is used", audio_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "audio-starts-late",
        _write(folder / "late-audio.mkv", "matroska", seconds=3.0, audios=(_stereo(1.0, start_seconds=2.0),)),
        "3 s picture, 1 s of sound starting 2 s after the first picture",
        time_seconds=2.5, audio_seconds=1.0, audio_offset_seconds=2.0, **ok,
    ))  # fmt: skip
    add(Case(
        "picture-starts-late",
        _write(folder / "late-picture.mkv", "matroska", seconds=2.0, frame_times=[1.0 + i / 25 for i in range(50)],
               audios=(_stereo(3.0),)),
        "3 s of sound, 2 s of picture starting 1 s after the sound (clicked at 2 s)",
        time_seconds=2.0, audio_seconds=3.0, **ok,
    ))  # fmt: skip
    add(Case(
        "audio-shorter",
        _write(folder / "audio-short.mp4", "mp4", seconds=2.0, audios=(_stereo(1.0),)),
        "2 s picture, 1 s of sound (clicked at 1.5 s, where only the picture is; no heatmap there)",
        time_seconds=1.5, audio_seconds=1.0, expect={"heatmap": "has no sound"}, **ok,
    ))  # fmt: skip
    add(Case(
        "audio-longer",
        _write(folder / "audio-long.mp4", "mp4", seconds=1.0, audios=(_stereo(3.0),)),
        "1 s picture, 3 s of sound (clicked at 2.5 s, after the last picture)",
        time_seconds=2.5, audio_seconds=3.0, **ok,
    ))  # fmt: skip
    add(Case(
        "silence",
        _write(folder / "silence.mkv", "matroska", audios=(_Audio(np.zeros((2, 88200), np.float32), 44100, "stereo", "flac"),)),
        "digital silence (FLAC zeros)", audio_seconds=2.0, **ok,
    ))  # fmt: skip
    square = np.sign(np.sin(2 * np.pi * 220 * np.arange(88200) / 44100)).astype(np.float32)
    add(Case(
        "clipping",
        _write(folder / "clipping.mkv", "matroska", audios=(_Audio(np.stack([square, -square]), 44100, "stereo", "flac"),)),
        "a square wave at full scale (FLAC)", audio_seconds=2.0, **ok,
    ))  # fmt: skip
    bad = _tones(2.0)
    bad[0, 1000:1100] = np.nan
    bad[1, 5000:5010] = np.inf
    bad[1, 6000:6010] = -np.inf
    add(Case(
        "nan-inf-float-audio",
        _write(folder / "nan-inf.mov", "mov", audios=(_Audio(bad, 44100, "stereo", "pcm_f32le", sample_format="flt"),)),
        "float PCM in .mov with NaN and +-inf samples",
        default="holds NaN or infinite samples", audio_seconds=2.0, **ok,
    ))  # fmt: skip

    # damaged and mislabelled files
    whole = _write(folder / "faststart.mp4", "mp4", audios=(_stereo(),), container_options={"movflags": "+faststart"})
    data = whole.read_bytes()
    whole.unlink()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    add(Case("truncated-half", folder / "truncated.mp4", "a faststart mp4 cut in half (index kept, data lost)",
             default="damaged"))  # fmt: skip
    moov_lost = folder / "no-moov.mp4"
    moov_lost.write_bytes(plain.read_bytes()[: plain.stat().st_size // 2])
    add(Case("moov-lost", moov_lost, "an mp4 cut in half: its moov atom (at the end) is lost",
             default="not a media file pixelsep can read"))  # fmt: skip
    (folder / "empty.mp4").write_bytes(b"")
    add(Case("zero-bytes", folder / "empty.mp4", "an empty file", default="is empty (0 bytes)"))
    (folder / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    add(Case("text-named-mp4", folder / "notes.mp4", "a text file named .mp4",
             default="not a media file pixelsep can read"))  # fmt: skip
    shutil.copyfile(plain, folder / "really-mp4.mkv")
    add(Case("mp4-named-mkv", folder / "really-mp4.mkv", "an mp4 named .mkv", audio_seconds=2.0, **ok))
    add(Case(
        "no-audio",
        _write(folder / "silent-film.mp4", "mp4"),
        "H.264 only, no audio stream", default="no audio stream",
    ))  # fmt: skip
    add(Case(
        "audio-only-m4a",
        _write(folder / "song.m4a", "ipod", video_codec=None, audios=(_stereo(),)),
        "AAC in .m4a, no picture", default="no video stream",
    ))  # fmt: skip
    add(Case(
        "audio-only-wav",
        _write(folder / "song.wav", "wav", video_codec=None, audios=(_Audio(_tones(2.0), 44100, "stereo", "pcm_s16le", sample_format="s16"),)),
        "16-bit PCM .wav", default="no video stream",
    ))  # fmt: skip

    # special files and paths
    fifo = folder / "pipe" / "clip.mp4"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    add(Case("fifo", fifo, "a named pipe named clip.mp4", default="not a regular file (a named pipe)"))
    (folder / "dir" / "clip.mp4").mkdir(parents=True)
    add(Case("folder-named-mp4", folder / "dir" / "clip.mp4", "a folder named clip.mp4", default="is a directory"))
    unicode_path = folder / "Konzert Größe ♪" / "clip é.mp4"
    unicode_path.parent.mkdir()
    shutil.copyfile(plain, unicode_path)
    add(Case("spaces-and-non-ascii", unicode_path, "a copy in 'Konzert Größe ♪/clip é.mp4'", audio_seconds=2.0, **ok))
    link = folder / "link" / "clip-link.mp4"
    link.parent.mkdir()
    link.symlink_to(plain)
    add(Case("symlink", link, "a symbolic link to plain.mp4", audio_seconds=2.0, **ok))
    dangling = folder / "link" / "gone.mp4"
    dangling.symlink_to(folder / "link" / "moved-away.mp4")
    add(Case("dangling-symlink", dangling, "a link to a file that is not there", default="does not exist"))
    add(Case("character-device", Path("/dev/null"), "/dev/null", default="not a regular file (a character device)"))
    read_only = folder / "ro" / "read-only.mp4"
    read_only.parent.mkdir()
    shutil.copyfile(plain, read_only)
    read_only.chmod(0o444)
    add(Case("read-only", read_only, "a copy with mode 0444", audio_seconds=2.0, **ok))
    return cases


if __name__ == "__main__":
    import sys
    import time

    started = time.perf_counter()
    made = make_corpus(sys.argv[1] if len(sys.argv) > 1 else "awkward-corpus")
    for case in made:
        print(f"{case.name:24} {case.path.name:20} {case.made}")
    print(f"{len(made)} cases in {time.perf_counter() - started:.1f} s")
