"""Sound for the previewer: the live remix pulled by a QAudioSink (QtMultimedia).

:class:`RemixDevice` is a read-only QIODevice that hands the sink the session's remix
(:meth:`~host_bridge.app.engine.PreviewSession.remix`, float32 interleaved) from its position on; the
sink pulls a few tens of milliseconds ahead, so an edit is heard after one buffer. Without an audio
output (a machine without sound, an offscreen test) :class:`AudioOutput` is inactive and the
previewer plays silently; the remix is the same either way.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QIODevice
from PyQt6.QtMultimedia import QAudio, QAudioFormat, QAudioSink, QMediaDevices

from host_bridge.app.engine import PreviewSession

SINK_BUFFER_SECONDS = 0.06  # what the sink holds ahead: an edit reaches the speakers after at most this


def fit_channels(block: np.ndarray, out_channels: int) -> np.ndarray:
    """(channels, n) for an output with ``out_channels``: as it is when they match, else every channel's
    mean in each output channel (a 5.1 clip on a stereo output, a stereo clip on a mono one)."""
    if block.shape[0] == out_channels:
        return block
    return np.repeat(block.mean(axis=0, keepdims=True), out_channels, axis=0)


class RemixDevice(QIODevice):
    """The remix from :attr:`position` (samples) on, as interleaved float32 frames."""

    def __init__(self, session: PreviewSession, out_channels: int | None = None, parent=None):
        super().__init__(parent)
        self.session = session
        self.position = 0
        self.out_channels = out_channels or session.num_channels
        self.bytes_per_frame = 4 * self.out_channels

    def seek_samples(self, position: int) -> None:
        self.position = max(0, int(position))

    def readData(self, maxlen: int) -> bytes:  # noqa: N802 (Qt's name)
        frames = maxlen // self.bytes_per_frame
        if frames <= 0:
            return b""
        block = self.session.remix(self.position, frames)  # (channels, frames)
        self.position += frames
        return np.ascontiguousarray(fit_channels(block, self.out_channels).T, dtype=np.float32).tobytes()

    def writeData(self, data) -> int:  # noqa: N802 (Qt's name)
        return -1

    def bytesAvailable(self) -> int:  # noqa: N802 (Qt's name)
        return 1 << 20

    def isSequential(self) -> bool:  # noqa: N802 (Qt's name)
        return True


class AudioOutput:
    """The default audio output playing a session's remix; :attr:`available` is False without one."""

    def __init__(self, session: PreviewSession, enabled: bool = True):
        self.session = session
        self.device = RemixDevice(session)
        self.sink: QAudioSink | None = None
        self.reason = ""
        if not enabled:
            self.reason = "sound is off"
            return
        output = QMediaDevices.defaultAudioOutput()
        if output.isNull():
            self.reason = "no audio output found: playing without sound"
            return
        audio_format = QAudioFormat()
        audio_format.setSampleRate(session.sample_rate)
        audio_format.setSampleFormat(QAudioFormat.SampleFormat.Float)
        for channels in dict.fromkeys((session.num_channels, 2, 1)):  # the clip's layout, else a downmix
            audio_format.setChannelCount(channels)
            if output.isFormatSupported(audio_format):
                break
        else:
            self.reason = f"the audio output cannot play {session.sample_rate} Hz: playing without sound"
            return
        self.device = RemixDevice(session, channels)
        self.sink = QAudioSink(output, audio_format)
        self.sink.setBufferSize(int(SINK_BUFFER_SECONDS * session.sample_rate) * self.device.bytes_per_frame)

    @property
    def available(self) -> bool:
        return self.sink is not None

    def start(self, sample_position: int) -> None:
        """Play from ``sample_position``: the first time the sink starts, afterwards it resumes
        (restarting an output can take a second; a suspended one resumes at once)."""
        self.device.seek_samples(sample_position)
        if self.sink is None:
            return
        if self.sink.state() == QAudio.State.SuspendedState:
            self.sink.resume()
            return
        if not self.device.isOpen():
            self.device.open(QIODevice.OpenModeFlag.ReadOnly)
        self.sink.start(self.device)

    def pause(self) -> None:
        if self.sink is not None and self.sink.state() in (QAudio.State.ActiveState, QAudio.State.IdleState):
            self.sink.suspend()

    def played_seconds(self) -> float | None:
        """Seconds of sound the output has taken since :meth:`start` (the playback clock while it
        plays: the picture follows it, so that a slow-starting output does not leave the sound
        behind); it counts on across pauses. None without an output or when it is stopped."""
        if self.sink is None or self.sink.state() == QAudio.State.StoppedState:
            return None
        return self.sink.processedUSecs() / 1e6

    def stop(self) -> None:
        if self.sink is not None and self.sink.state() != QAudio.State.StoppedState:
            self.sink.stop()

    def close(self) -> None:
        self.stop()
        if self.device.isOpen():
            self.device.close()
