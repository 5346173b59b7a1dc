"""User-facing errors: one line that says what was wrong and what to do.

Hosts print ``str(error)`` and exit non-zero; no traceback is shown for these.
"""

from __future__ import annotations


class PixelsepError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""


class InputError(PixelsepError):
    """A bad argument: a point outside the frame, a time outside the clip, a malformed value."""


class MediaError(PixelsepError):
    """A media file that is missing, unreadable, or lacks the stream that is needed."""


class ModelError(PixelsepError):
    """A model package that is missing, incomplete, or fails its checksums."""


class Cancelled(PixelsepError):
    """Long work stopped because the caller asked it to."""


class PixelsepWarning(UserWarning):
    """Something about the user's material that they should know but that does not stop the work
    (one line: what, where, what to do). Hosts show these as one line each."""


class ClippingWarning(PixelsepWarning):
    """Samples above full scale were clipped by a file format that cannot hold them (FLAC)."""


class CacheWarning(PixelsepWarning):
    """A cached analysis could not be used (damaged, changed) and is made again: the run is slower."""
