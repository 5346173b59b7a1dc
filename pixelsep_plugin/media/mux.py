"""The video with its new sound: the picture stream-copied, the audio replaced or added (PyAV).

- :func:`mux_new_audio`: a copy of the clip whose first audio stream is replaced by new audio (the
  remix). Every other stream (the picture, subtitles, data, further audio streams) is copied packet
  for packet with its own timestamps, and so are the container's and the streams' metadata, the
  chapters and the display rotation (the display matrix travels with the copied stream's parameters).
- :func:`write_multitrack`: an MKV or MOV for editors: the picture, the clip's original audio
  (copied, titled "original"; decoded and stored losslessly where a copy cannot keep it in sync),
  then one lossless, titled track per entry (the remix, the stems).

Audio in: float32 blocks of shape (channels, n) at the given sample rate, full scale [-1, 1]; sample 0
is the clip's audio sample 0 as :func:`.decode.read_audio` yields it. Blocks are pulled one at a time
while the clip's packets are copied, so memory does not grow with the clip's length.

Sync: the new audio starts where the clip's first audio stream starts on the picture's clock (where
the picture starts when the clip has no audio), and decoding the output from the audio stream's start
gives the new audio's sample 0 first, also for codecs that prime (AAC's 1024 samples, Opus's 312):

- MP4/MOV: to the sample. The movie time scale is the new audio's sample rate, and after FFmpeg's
  muxer has finished, the edit list of every audio track that starts later than time 0 and begins with
  priming samples is rewritten: an empty edit up to the start, then the media from its first real
  sample. (FFmpeg's muxer trims priming samples only from a track that starts at time 0; a later
  track keeps them in its presentation, which would put sample 0 a priming length late.) The index
  (moov) stays at the end of the file, where FFmpeg writes it.
- MKV/WebM: Matroska stores times in whole milliseconds (FFmpeg writes a 1 ms timestamp scale), so
  a start that is not a whole millisecond is rounded to one, and a codec delay (Opus, AAC) that is not
  a whole millisecond can move the start by up to 1 ms more. A Matroska clip's starts are whole
  milliseconds; with FLAC or PCM the start is then kept exactly.

Outputs are written to a hidden temp file beside the destination and renamed into place only when
complete (removed on any error, including a :class:`~pixelsep_plugin.errors.Cancelled` raised by the
``progress`` callback); the clip itself is never written.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import av.container
import av.stream
import numpy as np

from pixelsep_plugin.errors import InputError, MediaError
from pixelsep_plugin.media.decode import iter_audio_blocks
from pixelsep_plugin.media.encode import (
    LOSSY_BITS_PER_CHANNEL,
    _parse_layout,
    atomic_destination,
    check_not_protected,
)
from pixelsep_plugin.media.probe import audio_stream, first_line, layout_name, open_input, video_stream

Progress = Callable[[float, float], None]
AudioBlocks = Iterable[np.ndarray] | np.ndarray

# suffix -> FFmpeg muxer
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
# suffix -> the codec of the new audio when none is given
DEFAULT_AUDIO_CODECS = {".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "flac", ".webm": "libopus"}
# suffix -> the codec of the added tracks of a multitrack file when none is given
MULTITRACK_CODECS = {".mkv": "flac", ".mov": "pcm_s24le"}
# encoder -> the sample format frames are handed over in; "s32"/"s32p" carry 24-bit values in their top bits
AUDIO_SAMPLE_FORMATS = {
    "aac": "fltp",
    "libopus": "flt",
    "flac": "s32",
    "alac": "s32p",
    "pcm_s16le": "s16",
    "pcm_s24le": "s32",
    "pcm_f32le": "flt",
}
LOSSLESS_CODECS = ("flac", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le")
CODEC_ALIASES = {"opus": "libopus"}  # FFmpeg's own Opus encoder is experimental
# metadata FFmpeg's demuxers report that describe the file's making, not its content; muxers write their own
CONTAINER_KEYS_NOT_COPIED = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands"})
# stream metadata that describes the encoding of a stream, dropped when the stream is encoded anew
ENCODING_KEYS = frozenset({"encoder", "vendor_id", "duration"})
# the longest piece of new audio handed to the encoder at once, in samples (keeps the packets interleaved)
PIECE_SAMPLES = 8192


class AudioTrack(NamedTuple):
    """One audio track to add to a multitrack file.

    title: the name editors show (the stem's name, "remix").
    audio: float32 (channels, n) blocks (any iterable; an hour never has to sit in memory) or one
        (channels, n) array; full scale is [-1, 1]; sample 0 is the clip's audio sample 0.
    sample_rate: Hz.
    channel_layout: FFmpeg's name, e.g. "mono", "stereo", "5.1"; its channel count is the blocks' first axis.
    """

    title: str
    audio: AudioBlocks
    sample_rate: int
    channel_layout: str


# ---------------------------------------------------------------------------------------------------
# Checking the arguments


def _muxer_for(path: Path, allowed: Sequence[str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise InputError(f"cannot write {path.name}: the video is written as {', '.join(allowed)}")
    return MUXERS[suffix]


@functools.cache
def _encoder_fits(codec: str, muxer: str, sample_rate: int, channel_layout: str) -> bool:
    """Whether ``muxer`` holds ``codec`` audio with these settings: an encoder is opened and a header written
    to memory (some refusals, e.g. FLAC in QuickTime MOV, come only then)."""
    try:
        with av.open(io.BytesIO(), mode="w", format=muxer) as trial:
            stream = trial.add_stream(codec, rate=sample_rate, layout=channel_layout)
            stream.format = AUDIO_SAMPLE_FORMATS[codec]
            trial.start_encoding()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def _check_codec(
    codec: str, muxer: str, path: Path, sample_rate: int, layout: av.AudioLayout, lossless_only: bool
) -> str:
    """The encoder's name for ``codec``; InputError when pixelsep does not encode it, it cannot run at
    ``sample_rate``, or the container cannot hold it."""
    codec = CODEC_ALIASES.get(codec, codec)
    choices = LOSSLESS_CODECS if lossless_only else tuple(AUDIO_SAMPLE_FORMATS)
    if codec not in choices:
        kind = "lossless audio codec" if lossless_only else "audio codec"
        raise InputError(f"unknown {kind} {codec!r}: choose one of {', '.join(choices)}")
    rates = av.codec.Codec(codec, "w").audio_rates
    if rates and sample_rate not in rates:
        listed = ", ".join(str(rate) for rate in sorted(rates, reverse=True))
        raise InputError(f"{codec} cannot encode {sample_rate} Hz audio (only {listed} Hz): choose another codec")
    if not _encoder_fits(codec, muxer, sample_rate, layout.name):
        raise InputError(
            f"{path.suffix} files cannot hold {codec} audio ({sample_rate} Hz, {layout.name}): "
            "choose another codec or .mkv"
        )
    return codec


def _layout_of(stream: av.audio.stream.AudioStream) -> av.AudioLayout:
    """The stream's channel layout, named (a layout of unnamed channels gets the default for its count)."""
    return av.AudioLayout(layout_name(stream.layout))


def _check_sample_rate(sample_rate: int) -> int:
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InputError(f"sample rate must be a positive whole number of Hz, got {sample_rate}")
    return int(sample_rate)


def _protected(clip: Path, protect: Sequence[Path | str]) -> list[Path | str]:
    return [clip, *protect]


# ---------------------------------------------------------------------------------------------------
# The new audio: blocks -> frames -> packets


def _iter_pieces(audio: AudioBlocks, num_channels: int, name: str) -> Iterator[np.ndarray]:
    """float32 (channels, m) pieces of at most PIECE_SAMPLES from arrays or an iterable of blocks."""
    blocks: Iterable[np.ndarray] = [audio] if isinstance(audio, np.ndarray) else audio
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != num_channels:
            raise InputError(f"audio blocks for {name} must be ({num_channels}, n), got shape {block.shape}")
        if not np.isfinite(block).all():
            raise InputError(f"the audio for {name} contains NaN or infinity")
        for start in range(0, block.shape[1], PIECE_SAMPLES):
            yield block[:, start : start + PIECE_SAMPLES]


def _to_frame(piece: np.ndarray, sample_format: str, layout: av.AudioLayout) -> av.AudioFrame:
    """float32 (channels, m) -> an AudioFrame in ``sample_format`` (integer formats are clipped to full scale)."""
    if sample_format == "fltp":
        data = np.ascontiguousarray(piece)
    elif sample_format == "flt":
        data = np.ascontiguousarray(piece.T).reshape(1, -1)
    elif sample_format in ("s32", "s32p"):  # 24-bit steps in the top bits, as FFmpeg's 24-bit encoders take them
        scale = float(1 << 23)
        steps = np.clip(np.round(piece * scale), -scale, scale - 1).astype(np.int32) << 8
        data = np.ascontiguousarray(steps if sample_format == "s32p" else steps.T.reshape(1, -1))
    elif sample_format == "s16":
        scale = float(1 << 15)
        steps = np.clip(np.round(piece * scale), -scale, scale - 1).astype(np.int16)
        data = np.ascontiguousarray(steps.T).reshape(1, -1)
    else:  # pragma: no cover - AUDIO_SAMPLE_FORMATS lists only the formats above
        raise ValueError(sample_format)
    return av.AudioFrame.from_ndarray(data, format=sample_format, layout=layout)


@dataclass
class _NewAudio:
    """One audio stream being encoded from blocks, in step with the copied packets.

    start_pts: where sample 0 goes, in samples (1 / sample_rate) on the clip's clock.
    written: samples handed to the encoder so far.
    first_packet_seconds: the first packet's time, to tell how many priming samples the encoder put first.
    """

    pieces: Iterator[np.ndarray]
    stream: av.audio.stream.AudioStream
    sample_rate: int
    layout: av.AudioLayout
    sample_format: str
    start_pts: int
    written: int = 0
    finished: bool = False
    first_packet_seconds: Fraction | None = None

    @property
    def end_seconds(self) -> Fraction:
        """The clip time (s) up to which audio has been handed to the encoder."""
        return Fraction(self.start_pts + self.written, self.sample_rate)

    @property
    def start_seconds(self) -> Fraction:
        return Fraction(self.start_pts, self.sample_rate)

    def encode_until(self, container: av.container.OutputContainer, until_seconds: Fraction | None) -> None:
        """Encode pieces until the audio reaches ``until_seconds`` (None: to the end, then flush)."""
        while not self.finished and (until_seconds is None or self.end_seconds <= until_seconds):
            piece = next(self.pieces, None)
            if piece is None:
                self.finished = True
                self._mux(container, self.stream.encode(None))
                return
            if piece.shape[1] == 0:
                continue
            frame = _to_frame(piece, self.sample_format, self.layout)
            frame.sample_rate = self.sample_rate
            frame.time_base = Fraction(1, self.sample_rate)
            frame.pts = self.start_pts + self.written
            self.written += piece.shape[1]
            self._mux(container, self.stream.encode(frame))

    def _mux(self, container: av.container.OutputContainer, packets: list[av.Packet]) -> None:
        for packet in packets:
            if self.first_packet_seconds is None and packet.pts is not None:
                self.first_packet_seconds = Fraction(packet.pts) * packet.time_base
            container.mux(packet)


def _add_new_audio(
    container: av.container.OutputContainer,
    name: str,
    audio: AudioBlocks,
    codec: str,
    sample_rate: int,
    layout: av.AudioLayout,
    start_seconds: Fraction,
    metadata: dict[str, str],
) -> _NewAudio:
    """Add an output stream for new audio starting at ``start_seconds`` on the clip's clock."""
    stream = container.add_stream(codec, rate=sample_rate, layout=layout)
    sample_format = AUDIO_SAMPLE_FORMATS[codec]
    stream.format = sample_format
    stream.time_base = Fraction(1, sample_rate)
    if codec in LOSSY_BITS_PER_CHANNEL:
        stream.bit_rate = LOSSY_BITS_PER_CHANNEL[codec] * len(layout.channels)
    stream.metadata.update(metadata)
    return _NewAudio(
        pieces=_iter_pieces(audio, len(layout.channels), name),
        stream=stream,
        sample_rate=sample_rate,
        layout=layout,
        sample_format=sample_format,
        start_pts=int(round(start_seconds * sample_rate)),
    )


# ---------------------------------------------------------------------------------------------------
# Copied streams


def _stream_start_seconds(stream: av.stream.Stream | None) -> Fraction | None:
    """The stream's start time in seconds, exactly, or None when the container does not say."""
    if stream is None or stream.start_time is None or stream.time_base is None:
        return None
    return Fraction(stream.start_time) * stream.time_base


def _audio_origin(container: av.container.InputContainer) -> Fraction:
    """Where the clip's audio sample 0 is, in container seconds: the first audio stream's start, else the
    picture's (the project's time 0, as :func:`.probe.time_origin_seconds`)."""
    start = _stream_start_seconds(audio_stream(container))
    if start is None:
        start = _stream_start_seconds(video_stream(container))
    return start if start is not None else Fraction(0)


def _codec_name(stream: av.stream.Stream) -> str:
    if stream.codec_context is not None:
        return stream.codec_context.name
    return getattr(stream, "name", None) or "unknown"  # data streams have no codec context


def _copied_metadata(metadata: dict[str, str], muxer: str, drop: frozenset[str] = frozenset()) -> dict[str, str]:
    """A stream's metadata for the output: the MP4 demuxer's track "name" is the muxers' "title"."""
    copied = {key: value for key, value in metadata.items() if key.lower() not in drop}
    if "title" not in copied and "name" in copied:
        copied["title"] = copied.pop("name")
    if muxer in ("mp4", "mov") and "title" in copied and "handler_name" not in copied:
        copied["handler_name"] = copied["title"]
    return copied


def _can_copy(stream: av.stream.Stream, muxer: str) -> bool:
    """Whether ``muxer`` takes ``stream``'s packets unchanged: a header is written to memory to ask
    FFmpeg (some refusals, e.g. FLAC in QuickTime MOV, come only from writing the header)."""
    try:
        with av.open(io.BytesIO(), mode="w", format=muxer) as trial:
            trial.add_stream_from_template(stream)
            trial.start_encoding()
    except (av.error.FFmpegError, ValueError, TypeError):
        return False
    return True


def _add_copy(
    container: av.container.OutputContainer,
    stream: av.stream.Stream,
    muxer: str,
    path: Path,
    clip: Path,
    metadata: dict[str, str] | None = None,
) -> av.stream.Stream:
    """An output stream that takes ``stream``'s packets unchanged (codec parameters and side data copied).

    InputError when the output container cannot hold the stream's codec.
    """
    if not _can_copy(stream, muxer):
        raise InputError(
            f"{path.suffix} files cannot hold the {stream.type} stream {stream.index} of {clip.name} "
            f"({_codec_name(stream)}): write {clip.suffix.lower()} instead"
        )
    try:
        copy = container.add_stream_from_template(stream)
    except (av.error.FFmpegError, ValueError, TypeError) as error:
        raise MediaError(
            f"cannot copy the {stream.type} stream {stream.index} of {clip.name} ({first_line(error)})"
        ) from None
    copy.metadata.update(metadata if metadata is not None else _copied_metadata(dict(stream.metadata), muxer))
    copy.disposition = stream.disposition
    return copy


def _first_packet_seconds(clip: Path, index: int) -> Fraction | None:
    """The time (s) of the first packet of stream ``index`` of ``clip`` that has one."""
    with open_input(clip) as source:
        for packet in source.demux(source.streams[index]):
            if packet.pts is not None and packet.time_base is not None:
                return Fraction(packet.pts) * packet.time_base
    return None


def _copy_keeps_original(
    clip: Path, source: av.container.InputContainer, stream: av.audio.stream.AudioStream, muxer: str
) -> bool:
    """Whether copying the clip's audio packets into ``muxer`` keeps its samples at their times.

    Not when the muxer cannot hold the codec, nor from an MP4/MOV into Matroska when the first packet
    comes before the stream's start: those priming samples are trimmed by the clip's edit list, which
    Matroska cannot carry for copied packets (FFmpeg's muxer would keep them, a priming length late,
    and shift every stream to avoid negative times). Matroska to Matroska keeps its codec delay.
    """
    if not _can_copy(stream, muxer):
        return False
    if muxer in ("matroska", "webm") and "mov" in source.format.name.split(","):
        start, first = _stream_start_seconds(stream), _first_packet_seconds(clip, stream.index)
        if start is not None and first is not None and first < start:
            return False
    return True


def _packet_seconds(packet: av.Packet) -> Fraction | None:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return None
    return Fraction(stamp) * packet.time_base


@dataclass
class _CopiedAudio:
    """A copied audio stream's start (s) and its first packet's time (s), for the MP4 edit lists."""

    start_seconds: Fraction
    first_packet_seconds: Fraction | None = None


@dataclass
class _Plan:
    """What goes into the output: copied streams (input index -> output stream) and new audio streams."""

    copies: dict[int, av.stream.Stream] = field(default_factory=dict)
    new_audio: list[_NewAudio] = field(default_factory=list)
    copied_audio: dict[int, _CopiedAudio] = field(default_factory=dict)  # by output stream index


def _run(
    source: av.container.InputContainer,
    container: av.container.OutputContainer,
    plan: _Plan,
    progress: Progress | None,
) -> None:
    """Copy the planned streams' packets and encode the new audio in step with them (interleaved by time)."""
    duration = float(source.duration / av.time_base) if source.duration else 0.0
    begin = float(source.start_time / av.time_base) if source.start_time is not None else 0.0
    latest = Fraction(0)
    next_report = 0.0
    streams = [source.streams[index] for index in plan.copies]
    for packet in source.demux(streams) if streams else ():
        if packet.size == 0 and packet.pts is None and packet.dts is None:
            continue  # the empty packet that ends each stream's demuxing
        seconds = _packet_seconds(packet)
        if seconds is not None:
            latest = max(latest, seconds)
        for audio in plan.new_audio:
            audio.encode_until(container, latest)
        output = plan.copies[packet.stream.index]
        copied = plan.copied_audio.get(output.index)
        if copied is not None and copied.first_packet_seconds is None and packet.pts is not None:
            copied.first_packet_seconds = Fraction(packet.pts) * packet.time_base
        packet.stream = output
        container.mux(packet)
        if progress is not None and float(latest) - begin >= next_report:
            progress(min(max(float(latest) - begin, 0.0), duration), duration)
            next_report = float(latest) - begin + 1.0
    for audio in plan.new_audio:
        audio.encode_until(container, None)
    if progress is not None:
        progress(duration, duration)


def _close_quietly(container: av.container.OutputContainer) -> None:
    """Close a container whose file is being thrown away (its trailer may not be writable)."""
    try:
        container.close()
    except (av.error.FFmpegError, OSError, ValueError):
        pass  # the temp file is removed by the caller; the first error is the one to report


def _start(container: av.container.OutputContainer, out_path: Path) -> None:
    """Open the encoders and write the header, so that settings that do not fit fail before any work."""
    try:
        container.start_encoding()
    except (av.error.FFmpegError, ValueError) as error:
        raise MediaError(
            f"cannot start writing {out_path.name} ({first_line(error)}): the audio settings or the clip's "
            f"streams do not fit {out_path.suffix} files; try another codec or .mkv"
        ) from None


def _write(
    clip: Path,
    out_path: Path,
    muxer: str,
    protect: Sequence[Path | str],
    build: Callable[[av.container.InputContainer, av.container.OutputContainer], _Plan],
    movie_timescale: int,
    progress: Progress | None,
) -> Path:
    """Open ``clip``, let ``build`` plan the output streams, copy and encode, fix MP4 edit lists, rename."""
    options = {"movie_timescale": str(movie_timescale)} if muxer in ("mp4", "mov") else {}
    try:
        with atomic_destination(out_path, _protected(clip, protect)) as temp, open_input(clip) as source:
            try:
                container = av.open(str(temp), mode="w", format=muxer, options=options)
                try:
                    plan = build(source, container)
                    _start(container, out_path)
                    _run(source, container, plan, progress)
                except BaseException:
                    _close_quietly(container)
                    raise
                container.close()
            except av.error.FFmpegError as error:
                raise MediaError(f"writing {out_path.name} failed ({first_line(error)}): check the disk") from None
            if muxer in ("mp4", "mov"):
                _fix_audio_edit_lists(temp, _edit_fixes(plan))
    except OSError as error:  # the folder cannot be written (the temp file, the rename)
        reason = error.strerror or first_line(error)
        raise MediaError(
            f"cannot write {out_path.name} in {out_path.parent} ({reason}): choose a folder you can write to"
        ) from None
    return out_path


def _edit_fixes(plan: _Plan) -> dict[int, tuple[Fraction, Fraction]]:
    """Output stream index -> (start seconds, first packet seconds) of each audio stream that starts later
    than time 0 and whose first packet comes before its start (priming samples): see
    :func:`_fix_audio_edit_lists`."""
    pairs = {audio.stream.index: (audio.start_seconds, audio.first_packet_seconds) for audio in plan.new_audio}
    pairs.update({index: (c.start_seconds, c.first_packet_seconds) for index, c in plan.copied_audio.items()})
    return {
        index: (start, first)
        for index, (start, first) in pairs.items()
        if first is not None and start > 0 and first < start
    }


# ---------------------------------------------------------------------------------------------------
# MP4/MOV edit lists


def _boxes(data: bytes | memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of the ISO-BMFF boxes in data[start:end]."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[position + 8 : position + 16])[0]
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            raise MediaError("the MP4 file just written is malformed: please report this")
        yield bytes(kind), position, position + header, position + size
        position += size


def _box(kind: bytes, payload: bytes) -> bytes:
    if len(payload) + 8 <= 0xFFFFFFFF:
        return struct.pack(">I4s", len(payload) + 8, kind) + payload
    return struct.pack(">I4sQ", 1, kind, len(payload) + 16) + payload


def _timescale_and_duration(payload: bytes) -> tuple[int, int, int]:
    """(timescale, duration, offset of the duration field) of an mvhd or mdhd payload."""
    version = payload[0]
    offset = 4 + (16 if version else 8)
    timescale = struct.unpack(">I", payload[offset : offset + 4])[0]
    if version:
        return timescale, struct.unpack(">Q", payload[offset + 4 : offset + 12])[0], offset + 4
    return timescale, struct.unpack(">I", payload[offset + 4 : offset + 8])[0], offset + 4


def _set_duration(payload: bytearray, offset: int, version: int, duration: int) -> None:
    if version:
        struct.pack_into(">Q", payload, offset, duration)
    else:
        struct.pack_into(">I", payload, offset, min(duration, 0xFFFFFFFF))


def _edts(entries: list[tuple[int, int]]) -> bytes:
    """An edts box with one elst: (duration in movie units, media time in track units or -1 for empty)."""
    wide = any(duration > 0xFFFFFFFF or not -(1 << 31) <= media < (1 << 31) for duration, media in entries)
    body = bytearray(struct.pack(">B3xI", 1 if wide else 0, len(entries)))
    for duration, media in entries:
        body += struct.pack(">QqI" if wide else ">IiI", duration, media, 0x00010000)
    return _box(b"edts", _box(b"elst", bytes(body)))


def _fixed_trak(trak: bytes, movie_timescale: int, start: Fraction, first: Fraction) -> tuple[bytes, int]:
    """The trak box with its edit list rewritten: empty up to ``start`` (s), then the media from its first
    sample at or after ``start`` (the first packet is at ``first`` s). Returns (trak, its new duration in
    movie units)."""
    children = list(_boxes(trak, 8 if trak[:4] != b"\x00\x00\x00\x01" else 16, len(trak)))
    mdia = next((c for c in children if c[0] == b"mdia"), None)
    if mdia is None:
        raise MediaError("the MP4 file just written has a track without media: please report this")
    mdhd = next((c for c in _boxes(trak, mdia[2], mdia[3]) if c[0] == b"mdhd"), None)
    if mdhd is None:
        raise MediaError("the MP4 file just written has a track without a media header: please report this")
    track_timescale, media_duration, _ = _timescale_and_duration(trak[mdhd[2] : mdhd[3]])
    trim = int(round((start - first) * track_timescale))
    empty = int(round(start * movie_timescale))
    shown = max(0, int(round(Fraction(media_duration - trim, track_timescale) * movie_timescale)))
    entries = ([(empty, -1)] if empty > 0 else []) + [(shown, trim)]
    parts: list[bytes] = []
    for kind, begin, payload, end in children:
        if kind == b"edts":
            continue
        box = trak[begin:end]
        if kind == b"tkhd":
            body = bytearray(trak[payload:end])
            version = body[0]
            _set_duration(body, 4 + (16 if version else 8) + 8, version, empty + shown)
            box = _box(b"tkhd", bytes(body))
            parts.append(box)
            parts.append(_edts(entries))
            continue
        parts.append(box)
    return _box(b"trak", b"".join(parts)), empty + shown


def _fix_audio_edit_lists(path: Path, fixes: dict[int, tuple[Fraction, Fraction]]) -> None:
    """Rewrite the edit lists of the audio tracks in ``fixes`` (output stream index -> (start, first packet) s).

    FFmpeg's MP4 muxer writes a track whose first packet is at P > 0 as "empty until P, then all the
    media", so priming samples before the real start S (P = S - priming) are presented. This writes
    "empty until S, then the media from S - P on" instead. The moov box is the file's last box (FFmpeg
    writes it at the end unless asked to move it), so it is rewritten in place and no chunk offset changes.
    """
    if not fixes:
        return
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        moov_start = None
        position = 0
        while position + 8 <= size:
            handle.seek(position)
            header = handle.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - position
            if kind == b"moov":
                moov_start = position
                if position + box_size != size:
                    raise MediaError("the MP4 file just written does not end with its index: please report this")
                break
            position += box_size
        if moov_start is None:
            raise MediaError("the MP4 file just written has no index (moov): please report this")
        handle.seek(moov_start)
        moov = handle.read(size - moov_start)
        header_size = 16 if moov[:4] == b"\x00\x00\x00\x01" else 8
        children = list(_boxes(moov, header_size, len(moov)))
        mvhd = next((c for c in children if c[0] == b"mvhd"), None)
        if mvhd is None:
            raise MediaError("the MP4 file just written has no movie header: please report this")
        mvhd_body = bytearray(moov[mvhd[2] : mvhd[3]])
        movie_timescale, movie_duration, duration_offset = _timescale_and_duration(bytes(mvhd_body))
        parts: list[bytes] = []
        track = 0
        longest = movie_duration
        for kind, begin, _payload, end in children:
            box = moov[begin:end]
            if kind == b"trak":
                if track in fixes:
                    box, duration = _fixed_trak(box, movie_timescale, *fixes[track])
                    longest = max(longest, duration)
                track += 1
            parts.append(box)
        if longest != movie_duration:
            _set_duration(mvhd_body, duration_offset, mvhd_body[0], longest)
            parts[[c[0] for c in children].index(b"mvhd")] = _box(b"mvhd", bytes(mvhd_body))
        new_moov = _box(b"moov", b"".join(parts))
        handle.seek(moov_start)
        handle.write(new_moov)
        handle.truncate()


# ---------------------------------------------------------------------------------------------------
# Public functions


def _metadata_and_chapters(source: av.container.InputContainer, container: av.container.OutputContainer) -> None:
    for key, value in source.metadata.items():
        if key.lower() not in CONTAINER_KEYS_NOT_COPIED:
            container.metadata[key] = value
    chapters = source.chapters()
    if chapters:
        container.set_chapters(chapters)


def mux_new_audio(
    clip: Path | str,
    audio_blocks: AudioBlocks,
    sample_rate: int,
    channel_layout: str,
    out_path: Path | str,
    codec: str | None = None,
    protect: Sequence[Path | str] = (),
    progress: Progress | None = None,
) -> Path:
    """Write a copy of ``clip`` whose first audio stream is ``audio_blocks``; the picture is not re-encoded.

    clip: the source video; it is never written (nor any path in ``protect``): InputError.
    audio_blocks: float32 (channels, n) blocks, or one (channels, n) array, at ``sample_rate`` Hz in
        ``channel_layout`` (FFmpeg's name: "mono", "stereo", "5.1"); full scale is [-1, 1]; sample 0 is
        the clip's audio sample 0 (as :func:`.decode.read_audio` yields it). Blocks are pulled as the
        output is written, so memory does not grow with the clip's length.
    out_path: .mp4, .m4v, .mov, .mkv or .webm; the container for the output, which must be able to hold
        every copied stream (the clip's own suffix always can).
    codec: the new audio's encoder: "aac" (default for .mp4/.m4v/.mov; 96 kbit/s per channel), "flac"
        (default for .mkv; 24-bit), "libopus" (default for .webm; 64 kbit/s per channel; 48, 24, 16, 12
        or 8 kHz only), "alac" (24-bit), "pcm_s16le", "pcm_s24le" or "pcm_f32le". Integer formats
        clip peaks above full scale; AAC, Opus and 32-bit float PCM carry them.
    progress: called as ``progress(done_seconds, total_seconds)`` about once per second of the clip;
        an exception it raises (e.g. Cancelled) stops the work and removes the partial output.

    Every other stream is copied packet for packet with its own timestamps (the picture, subtitles,
    data, further audio streams; not a MOV chapter track, which the muxer writes anew), in the clip's
    order, the new audio in the first audio stream's place; so are the container's and streams'
    metadata (the new audio takes the replaced stream's title, language and disposition), the chapters
    and the display rotation. A clip without audio gets the
    new audio as its last stream, starting with its picture. Sync: see the module docstring (MP4/MOV
    to the sample; Matroska to the millisecond). Returns ``out_path``.
    """
    clip, out_path = Path(clip), Path(out_path)
    muxer = _muxer_for(out_path, tuple(DEFAULT_AUDIO_CODECS))
    sample_rate = _check_sample_rate(sample_rate)
    layout = _parse_layout(channel_layout)
    codec = _check_codec(
        codec or DEFAULT_AUDIO_CODECS[out_path.suffix.lower()],
        muxer,
        out_path,
        sample_rate,
        layout,
        lossless_only=False,
    )
    check_not_protected(out_path, _protected(clip, protect))

    def build(source: av.container.InputContainer, container: av.container.OutputContainer) -> _Plan:
        replaced = audio_stream(source)
        origin = _audio_origin(source)
        plan = _Plan()
        _metadata_and_chapters(source, container)
        for stream in source.streams:
            if stream.discard == av.stream.Discard.all:
                continue  # a MOV chapter track, which the muxer writes anew from the chapters
            if replaced is not None and stream.index == replaced.index:
                metadata = _copied_metadata(dict(stream.metadata), muxer, ENCODING_KEYS)
                new = _add_new_audio(
                    container, "the new audio", audio_blocks, codec, sample_rate, layout, origin, metadata
                )
                new.stream.disposition = stream.disposition
                plan.new_audio.append(new)
            else:
                copy = _add_copy(container, stream, muxer, out_path, clip)
                plan.copies[stream.index] = copy
                start = _stream_start_seconds(stream)
                if stream.type == "audio" and start is not None:
                    plan.copied_audio[copy.index] = _CopiedAudio(start)
        if replaced is None:
            plan.new_audio.append(
                _add_new_audio(container, "the new audio", audio_blocks, codec, sample_rate, layout, origin, {})
            )
        return plan

    return _write(clip, out_path, muxer, protect, build, sample_rate, progress)


def write_multitrack(
    clip: Path | str,
    tracks: Sequence[AudioTrack | tuple[str, AudioBlocks, int, str]],
    out_path: Path | str,
    codec: str | None = None,
    original_title: str = "original",
    protect: Sequence[Path | str] = (),
    progress: Progress | None = None,
) -> Path:
    """Write an MKV or MOV for editors: the picture (copied), the clip's audio (copied), then ``tracks``.

    clip: the source video; never written (nor any path in ``protect``): InputError.
    tracks: :class:`AudioTrack` entries (or plain ``(title, audio, sample_rate, channel_layout)``
        tuples), e.g. the remix first, then one per stem; each becomes one audio track titled ``title``
        (metadata "title", and "handler_name" in MOV, which editors show), starting where the clip's
        audio starts, to the sample.
    out_path: .mkv or .mov.
    codec: lossless: "flac" (default in .mkv), "pcm_s24le" (default in .mov), "alac", "pcm_s16le" or
        "pcm_f32le". Peaks: FLAC, ALAC and 24-bit PCM store 24-bit integers, so samples are clipped to
        [-1, 1 - 2**-23] and rounded to steps of 2**-23 (16-bit PCM: 2**-15); a stem or remix louder
        than full scale loses its peaks there. "pcm_f32le" keeps every float sample exactly, peaks
        above 1.0 included (editors read it; files are a third larger than 24-bit PCM).
    original_title: the title of the clip's own audio track.
    progress: as for :func:`mux_new_audio`.

    Stream order: the clip's video streams, the clip's first audio stream titled ``original_title``
    (left out when the clip has none), then ``tracks`` in order. The original's packets are copied
    unchanged, metadata kept; but when the container cannot hold its codec (FLAC, Opus or Vorbis in
    MOV) or a copy would not keep its samples at their times (AAC from an MP4, whose priming samples
    only an MP4 edit list trims, in MKV), it is decoded and stored losslessly like the tracks (the same
    samples :func:`.decode.read_audio` gives). The container's metadata, the chapters and the display
    rotation are kept; subtitle, data and further audio streams of the clip are not written here
    (:func:`mux_new_audio` keeps them).
    Returns ``out_path``.
    """
    clip, out_path = Path(clip), Path(out_path)
    muxer = _muxer_for(out_path, tuple(MULTITRACK_CODECS))
    entries = [AudioTrack(*track) for track in tracks]
    if not entries:
        raise InputError("give at least one audio track for the multitrack file")
    track_codec = codec or MULTITRACK_CODECS[out_path.suffix.lower()]
    checked: list[tuple[AudioTrack, int, av.AudioLayout, str]] = []
    for entry in entries:
        if not isinstance(entry.title, str) or not entry.title.strip():
            raise InputError(f"every track needs a title, got {entry.title!r}")
        rate = _check_sample_rate(entry.sample_rate)
        layout = _parse_layout(entry.channel_layout)
        chosen = _check_codec(track_codec, muxer, out_path, rate, layout, lossless_only=True)
        checked.append((entry, rate, layout, chosen))
    check_not_protected(out_path, _protected(clip, protect))

    def build(source: av.container.InputContainer, container: av.container.OutputContainer) -> _Plan:
        original = audio_stream(source)
        origin = _audio_origin(source)
        plan = _Plan()
        _metadata_and_chapters(source, container)
        for stream in source.streams.video:
            plan.copies[stream.index] = _add_copy(container, stream, muxer, out_path, clip)
        if original is not None:
            titled = {"title": original_title, **({"handler_name": original_title} if muxer == "mov" else {})}
            if _copy_keeps_original(clip, source, original, muxer):
                metadata = {**_copied_metadata(dict(original.metadata), muxer), **titled}
                copy = _add_copy(container, original, muxer, out_path, clip, metadata)
                plan.copies[original.index] = copy
                start = _stream_start_seconds(original)
                plan.copied_audio[copy.index] = _CopiedAudio(start if start is not None else origin)
            else:  # decoded, and stored losslessly like the other tracks
                metadata = {**_copied_metadata(dict(original.metadata), muxer, ENCODING_KEYS), **titled}
                rate, layout = int(original.rate), _layout_of(original)
                chosen = _check_codec(track_codec, muxer, out_path, rate, layout, lossless_only=True)
                decoded = iter_audio_blocks(clip)
                new = _add_new_audio(container, "the original audio", decoded, chosen, rate, layout, origin, metadata)
                plan.new_audio.append(new)
        for entry, rate, layout, chosen in checked:
            metadata = {"title": entry.title}
            if muxer == "mov":
                metadata["handler_name"] = entry.title
            name = f"the track {entry.title!r}"
            plan.new_audio.append(_add_new_audio(container, name, entry.audio, chosen, rate, layout, origin, metadata))
        return plan

    return _write(clip, out_path, muxer, protect, build, checked[0][1], progress)
