"""Checks on where a command will write, made before any heavy work: the folder can be written, no
output is a folder, and existing files are replaced only with ``--force``."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pixelsep_plugin.errors import InputError


def check_folder(folder: Path, what: str = "output folder") -> None:
    """Raise one line unless files can be created in ``folder`` (created later when missing)."""
    from pixelsep_plugin.media.encode import WRITE_ERRNOS

    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file, not a folder: give a folder")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot create {what} {folder}: {existing} is a file")
    try:
        handle, probe = tempfile.mkstemp(prefix=".pixelsep-write-check-", dir=existing)
    except OSError as error:
        reason = WRITE_ERRNOS.get(error.errno or 0) or error.strerror or str(error)
        raise InputError(f"cannot write in {what} {folder} ({reason}): choose a folder you can write to") from None
    os.close(handle)
    os.unlink(probe)


def check_outputs(paths: Sequence[Path], force: bool) -> None:
    """Raise one line when an output path is a folder, or exists and ``force`` is not given."""
    for path in paths:
        if path.is_dir():
            raise InputError(f"{path} is a folder, where pixelsep would write a file: move it or choose another name")
    existing = [path for path in paths if path.exists() or path.is_symlink()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InputError(f"{existing[0]} already exists{more}: pass --force to replace it, or choose another name")


def note_sound_offset(clip_name: str, audio_offset_seconds: float) -> None:
    """One line on stderr when the clip's sound does not start with its picture: audio files start
    with the sound, so an editor must place them at the offset to line up with the picture."""
    offset = audio_offset_seconds
    if abs(offset) >= 0.0005:
        where = "after" if offset > 0 else "before"
        print(
            f"note: the sound of {clip_name} starts {abs(offset):.3f} s {where} its picture; the audio files start "
            f"with the sound, so place them at {offset:+.3f} s to line up with the picture",
            file=sys.stderr,
        )


def note_replaced(paths: Sequence[Path]) -> None:
    """One line on stderr when renders of a recipe in its own output folder replace earlier ones."""
    existing = [path for path in paths if path.is_file()]
    if existing:
        print(
            f"note: replacing {len(existing)} earlier render(s) of this recipe in {existing[0].parent}",
            file=sys.stderr,
        )
