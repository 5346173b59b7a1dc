"""Media through PyAV: the one place for decoding, encoding, sample rates and frame times."""

import av as _av

from pixelsep_plugin.errors import MediaError
from pixelsep_plugin.media.decode import (
    frame_size_for,
    iter_analysis_audio,
    iter_audio_blocks,
    iter_sampled_frames,
    plan_frame_decoding,
    read_analysis_audio,
    read_audio,
    read_frame,
    read_png,
)
from pixelsep_plugin.media.encode import AudioWriter, write_audio, write_png
from pixelsep_plugin.media.probe import MediaInfo, probe, require_audio, require_video
from pixelsep_plugin.media.testclips import make_test_clip


def av_version() -> str:
    return _av.__version__


__all__ = [
    "AudioWriter",
    "MediaError",
    "MediaInfo",
    "av_version",
    "frame_size_for",
    "iter_analysis_audio",
    "iter_audio_blocks",
    "iter_sampled_frames",
    "make_test_clip",
    "plan_frame_decoding",
    "probe",
    "read_analysis_audio",
    "read_audio",
    "read_frame",
    "read_png",
    "require_audio",
    "require_video",
    "write_audio",
    "write_png",
]
