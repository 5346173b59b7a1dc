"""Samples ``[start, stop)`` of a clip's native audio without decoding it from the start, exactly.

The analysis cache keeps no copy of the clip's audio when the clip can give it back bit for bit:
:func:`scan_audio` decodes the first audio stream once, in order (as :func:`.decode.iter_audio_blocks`
does), and notes a CRC-32 of the float32 bytes of every block of ``block_samples`` samples and each
decoded frame's pts with the sample it starts at (the frame table). :class:`AudioSpanReader` later
seeks to a frame before the span (a pre-roll for the codec's memory: AAC's overlapping transform,
MP3's bit reservoir, Opus's pre-roll), places the decoded frames by looking their pts up in the
table, and checks every block it returns against its CRC. A block that does not match is decoded
again with a longer pre-roll and at last by a decode from the start, so what the reader returns
always equals the same samples of a sequential decode. Reads that follow one another (a render
from start to end) continue one decoder instead of seeking again.

Measured on test clips: PCM, FLAC, MP3 and Opus decode exactly after a seek with these pre-rolls.
AAC does for some content and not for other: on some FFmpeg-encoded clips the samples after a
seek stay about 3e-6 off however long the pre-roll, as if some decoder state ran from the start of
the stream (perceptual noise substitution's noise generator would do that). The analysis tries
seeks at a few places and stores the audio of such clips instead.

Samples are float32 planar (channels, n) at the stream's own rate and layout, as
:func:`.decode.iter_audio_blocks` yields them.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from pixelsep_plugin.errors import InputError, MediaError
from pixelsep_plugin.media.decode import _BlockAssembler, _decode_error
from pixelsep_plugin.media.decode import _decoded_frames as _frames
from pixelsep_plugin.media.probe import audio_stream, open_input

DEFAULT_BLOCK_SAMPLES = 1 << 16
# Pre-rolls tried in turn, in samples before the first wanted block; after the last, a decode from
# the start. 16384 samples (0.37 s at 44.1 kHz) covers AAC's one-frame overlap and MP3's reservoir
# (at most 511 bytes back, under 2 frames); Opus's float decoder needs its state to settle to the
# last bit, measured at under 65536 samples (1.4 s at 48 kHz) on test clips.
PREROLL_SAMPLES = (16384, 65536, 262144)
# A read this many blocks or fewer past the open decoder's position decodes on instead of seeking.
CONTINUE_BLOCKS = 32
CACHED_BLOCKS = 8


def block_checksum(block: np.ndarray) -> int:
    """CRC-32 of the C-ordered float32 bytes of ``block`` (channels, n)."""
    return zlib.crc32(np.ascontiguousarray(block, dtype=np.float32).tobytes())


@dataclass(frozen=True)
class AudioScan:
    """What :func:`scan_audio` learnt about a clip's audio.

    num_samples: samples per channel; num_channels; sample_rate in Hz.
    block_samples: the samples per checksummed block; checksums: uint32 (blocks,), CRC-32 per block.
    frame_pts: int64 (frames,) each decoded frame's pts (stream time base), and frame_positions:
        int64 (frames,) the sample where it starts: the map from a frame found after a seek to its
        place (containers such as Matroska keep whole milliseconds, too coarse to compute it).
    pts_consistent: every frame has a pts, the pts rise strictly and the format conversion keeps
        each frame's length: then positions can be found again after a seek.
    integer_format: the decoder's sample format is integer (PCM s16/s32...), so FLAC could hold it.
    codec: the decoder's name.
    """

    num_samples: int
    num_channels: int
    sample_rate: int
    block_samples: int
    checksums: np.ndarray
    frame_pts: np.ndarray
    frame_positions: np.ndarray
    pts_consistent: bool
    integer_format: bool
    codec: str


def _converted(
    path: Path, stream: av.audio.stream.AudioStream, frames: Iterator[av.AudioFrame]
) -> Iterator[tuple[av.AudioFrame | None, np.ndarray]]:
    """(input frame, float32 (channels, n)) through the same fltp conversion as
    :func:`.decode.iter_audio_blocks`; the resampler's flush comes last with frame None."""
    channels = len(stream.layout.channels)
    resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
    while True:
        frame = next(frames, None)
        try:
            converted = resampler.resample(frame)
        except (av.error.FFmpegError, ValueError) as error:
            raise _decode_error(path, error) from None
        pieces = [out.to_ndarray().reshape(channels, -1) for out in converted if out is not None]
        if pieces or frame is not None:
            if len(pieces) == 1:
                piece = pieces[0]
            elif pieces:
                piece = np.concatenate(pieces, axis=1)
            else:
                piece = np.zeros((channels, 0), np.float32)
            yield frame, piece
        if frame is None:
            return


def scan_audio(path: Path | str, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[np.ndarray | AudioScan]:
    """Decode the first audio stream in order, yielding its float32 (channels, n) pieces (together
    exactly :func:`.decode.iter_audio_blocks`'s samples) and, last, the :class:`AudioScan`."""
    path = Path(path)
    if block_samples < 1:
        raise InputError(f"block_samples must be positive, got {block_samples}")
    with open_input(path) as container:
        stream = audio_stream(container)
        if stream is None:
            raise MediaError(f"no audio stream in {path.name}: pixelsep needs a video with sound")
        rate = int(stream.rate)
        channels = len(stream.layout.channels)
        codec = stream.codec_context.name
        decoded_format = stream.codec_context.format
        integer = decoded_format is not None and not decoded_format.name.startswith(("flt", "dbl"))
        checksums: list[int] = []
        blocks = _BlockAssembler(channels, block_samples)
        position = 0
        frame_pts: list[int] = []
        frame_positions: list[int] = []
        consistent = True
        for frame, piece in _converted(path, stream, _frames(path, container, stream)):
            if frame is not None:
                if frame.pts is None or frame.samples != piece.shape[1] or (frame_pts and frame.pts <= frame_pts[-1]):
                    consistent = False
                elif consistent:
                    frame_pts.append(int(frame.pts))
                    frame_positions.append(position)
            elif piece.shape[1]:
                consistent = False  # the resampler held samples back: positions are not the frames'
            position += piece.shape[1]
            if not np.isfinite(piece).all():  # float PCM can carry them; nothing downstream could use them
                raise MediaError(
                    f"the audio of {path.name} holds NaN or infinite samples: repair or re-encode its sound first"
                )
            checksums.extend(block_checksum(block) for block in blocks.push(piece))
            if piece.shape[1]:
                yield piece
        checksums.extend(block_checksum(block) for block in blocks.rest())
    yield AudioScan(
        num_samples=position,
        num_channels=channels,
        sample_rate=rate,
        block_samples=block_samples,
        checksums=np.asarray(checksums, dtype=np.uint32),
        frame_pts=np.asarray(frame_pts if consistent else [], dtype=np.int64),
        frame_positions=np.asarray(frame_positions if consistent else [], dtype=np.int64),
        pts_consistent=consistent and bool(frame_pts),
        integer_format=integer,
        codec=codec,
    )


class _Mismatch(Exception):
    """A decoded block differs from its checksum, or samples are missing around a seek."""

    def __init__(self, block: int) -> None:
        super().__init__(block)
        self.block = block


@dataclass
class _Cursor:
    """An open decoder yielding verified blocks; ``level`` indexes PREROLL_SAMPLES (len: from the start)."""

    blocks: Iterator[tuple[int, np.ndarray]]
    next_block: int
    level: int


class AudioSpanReader:
    """Exact reads of a clip's native audio by sample position (see the module docstring).

    ``scan`` is the :class:`AudioScan` of this very clip (the reader fails with MediaError when the
    clip no longer decodes to it). Thread-safe; holds at most one open decoder and
    ``CACHED_BLOCKS`` decoded blocks. Call :meth:`close` (or use it as a context manager) to close
    the decoder early. ``seek`` False: never seek (for clips known not to decode exactly after a
    seek): a read that does not continue the open decoder decodes from the start of the stream.
    """

    def __init__(self, path: Path | str, scan: AudioScan, seek: bool = True) -> None:
        if not scan.pts_consistent or not len(scan.frame_pts):
            raise InputError(f"{Path(path).name}: its audio frames' pts do not give sample positions; read it in order")
        self.path = Path(path)
        self.scan = scan
        self._num_blocks = len(scan.checksums)
        self._first_level = 0 if seek else len(PREROLL_SAMPLES)
        self._lock = threading.Lock()
        self._cursor: _Cursor | None = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.seeks = 0  # decoders opened (for tests and benchmarks)

    def __enter__(self) -> AudioSpanReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._drop_cursor()
            self._cache.clear()

    def _drop_cursor(self) -> None:
        if self._cursor is not None:
            self._cursor.blocks.close()  # type: ignore[attr-defined]
            self._cursor = None

    def read(self, sample_start: int, sample_stop: int) -> np.ndarray:
        """Samples ``[sample_start, sample_stop)``: float32 (channels, n), equal to the same samples
        of :func:`.decode.iter_audio_blocks`."""
        n, size = self.scan.num_samples, self.scan.block_samples
        if not 0 <= sample_start <= sample_stop <= n:
            raise InputError(f"samples {sample_start}:{sample_stop} are outside the clip's 0:{n}")
        if sample_start == sample_stop:
            return np.zeros((self.scan.num_channels, 0), dtype=np.float32)
        first, last = sample_start // size, (sample_stop - 1) // size
        with self._lock:
            parts = [self._block(b) for b in range(first, last + 1)]
        joined = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return np.array(joined[:, sample_start - first * size : sample_stop - first * size], dtype=np.float32)

    def seeks_exactly(self, blocks: list[int]) -> bool:
        """Whether each of ``blocks`` decodes exactly after a seek with one of the pre-rolls (no
        decode from the start): a check made once, when the clip is analysed."""
        for block in blocks:
            exact = False
            for level in range(len(PREROLL_SAMPLES)):
                gen = self._blocks(block, PREROLL_SAMPLES[level])
                try:
                    index, _ = next(gen)
                    exact = index == block
                except (_Mismatch, StopIteration):
                    exact = False
                finally:
                    gen.close()
                if exact:
                    break
            if not exact:
                return False
        return True

    def _block(self, block: int) -> np.ndarray:
        if block in self._cache:
            self._cache.move_to_end(block)
            return self._cache[block]
        cursor = self._cursor
        if cursor is None or not cursor.next_block <= block <= cursor.next_block + CONTINUE_BLOCKS:
            self._drop_cursor()
            cursor = self._cursor = self._open(block, self._first_level)
        while True:
            try:
                while cursor.next_block <= block:
                    index, values = next(cursor.blocks)
                    cursor.next_block = index + 1
                    self._cache[index] = values
                    if len(self._cache) > CACHED_BLOCKS:
                        self._cache.popitem(last=False)
                return self._cache[block] if block in self._cache else values
            except (_Mismatch, StopIteration) as error:
                failed = error.block if isinstance(error, _Mismatch) else cursor.next_block
                level = cursor.level + 1
                self._drop_cursor()
                if level > len(PREROLL_SAMPLES):
                    raise MediaError(
                        f"{self.path.name} no longer decodes to the audio it was analysed with: analyse it again"
                    ) from None
                cursor = self._cursor = self._open(failed, level)

    def _open(self, block: int, level: int) -> _Cursor:
        preroll = PREROLL_SAMPLES[level] if level < len(PREROLL_SAMPLES) else None
        return _Cursor(self._blocks(block, preroll), block, level)

    def _blocks(self, first: int, preroll: int | None) -> Iterator[tuple[int, np.ndarray]]:
        """Verified blocks ``first, first + 1, ...``; decoding starts ``preroll`` samples before
        ``first`` (None: from the start of the stream, exactly as a sequential decode)."""
        scan, size = self.scan, self.scan.block_samples
        target = first * size
        # the frame holding the pre-roll's first sample; its pts is where the demuxer seeks
        frame = int(np.searchsorted(scan.frame_positions, target - (preroll or 0), side="right")) - 1
        seek = preroll is not None and frame > 0
        self.seeks += 1
        with open_input(self.path) as container:
            stream = audio_stream(container)
            if stream is None:
                raise MediaError(f"no audio stream in {self.path.name}: the file changed since it was analysed")
            if seek:
                try:
                    container.seek(int(scan.frame_pts[frame]), stream=stream, backward=True, any_frame=False)
                except av.error.FFmpegError:
                    raise _Mismatch(first) from None
            blocks = _BlockAssembler(scan.num_channels, size)
            index = first
            position: int | None = 0 if not seek else None
            for frame, piece in _converted(self.path, stream, _frames(self.path, container, stream)):
                if piece.shape[0] != scan.num_channels:
                    raise _Mismatch(index)
                if seek and frame is not None:
                    if frame.pts is None:
                        raise _Mismatch(index)
                    found = int(np.searchsorted(scan.frame_pts, frame.pts))
                    if found == len(scan.frame_pts) or scan.frame_pts[found] != frame.pts:
                        if position is None:
                            continue  # a frame the seek started in the middle of: pre-roll anyway
                        raise _Mismatch(index)
                    at = int(scan.frame_positions[found])
                    if position is not None and at != position:
                        raise _Mismatch(index)
                    position = at
                assert position is not None
                begin, position = position, position + piece.shape[1]
                want = index * size + blocks.filled
                if begin > want:
                    raise _Mismatch(index)  # the seek landed after the span: more pre-roll
                if position <= want:
                    continue
                for block in blocks.push(piece[:, want - begin :]):
                    yield self._verified(index, block)
                    index += 1
                    if index == self._num_blocks:
                        return
            if index < self._num_blocks and blocks.filled == scan.num_samples - index * size:
                for block in blocks.rest():
                    yield self._verified(index, block)
                return
            raise _Mismatch(index)

    def _verified(self, index: int, block: np.ndarray) -> tuple[int, np.ndarray]:
        if index >= self._num_blocks or block_checksum(block) != int(self.scan.checksums[index]):
            raise _Mismatch(index)
        return index, block
