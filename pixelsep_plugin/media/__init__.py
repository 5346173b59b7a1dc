"""Media through PyAV: the one place for decoding, encoding, sample rates and time bases.

- :mod:`.probe`: what a file holds (:class:`MediaInfo`), display size and rotation.
- :mod:`.decode`: streamed native and analysis audio, sampled display-oriented video frames.
- :mod:`.encode`: atomic audio/PNG writing and synthetic test clips.
- :mod:`.mux`: the video with new sound: the picture stream-copied, the audio replaced, or a
  multitrack file (original + remix + stems) for editors.
"""

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
from pixelsep_plugin.media.encode import (
    AudioWriter,
    audio_writers,
    make_test_clip,
    tone_pair,
    write_audio,
    write_clip,
    write_png,
)
from pixelsep_plugin.media.mux import AudioTrack, mux_new_audio, write_multitrack
from pixelsep_plugin.media.probe import MediaInfo, default_layout, probe, require_audio, require_video


def av_version() -> str:
    """The installed PyAV version, e.g. "18.1.0"."""
    return _av.__version__


__all__ = [
    "AudioTrack",
    "AudioWriter",
    "audio_writers",
    "MediaError",
    "MediaInfo",
    "av_version",
    "default_layout",
    "frame_size_for",
    "iter_analysis_audio",
    "iter_audio_blocks",
    "iter_sampled_frames",
    "make_test_clip",
    "mux_new_audio",
    "plan_frame_decoding",
    "probe",
    "read_analysis_audio",
    "read_audio",
    "read_frame",
    "read_png",
    "require_audio",
    "require_video",
    "tone_pair",
    "write_audio",
    "write_clip",
    "write_multitrack",
    "write_png",
]
