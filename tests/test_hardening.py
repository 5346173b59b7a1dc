"""Faults a user meets: special files as clips, unwritable or full output folders, outputs that exist,
peaks a file format cannot hold. Each ends in one line and a non-zero exit, with nothing written."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from host_bridge.cli.main import main
from pixelsep_plugin import media
from pixelsep_plugin.errors import ClippingWarning, MediaError
from pixelsep_plugin.media import encode


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("pixelsep: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_a_named_pipe_as_the_clip_is_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    started = time.monotonic()
    code, out, err = run(capsys, "analyze", fifo, "--cache-dir", tmp_path / "c")
    assert code == 1 and time.monotonic() - started < 5
    assert "not a regular file (a named pipe)" in one_line_error(err)


def test_separate_checks_its_outputs_before_any_analysis(small_model, clip_factory, tmp_path, capsys):
    clip = clip_factory("hardening.mp4")
    common = ["--at", "40,60", "--name", "left", "--model", small_model, "--cache-dir", tmp_path / "c", "-q"]
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("keep")
    code, out, err = run(capsys, "separate", clip, *common, "-o", a_file)
    assert code == 1 and "is a file, not a folder" in one_line_error(err)
    assert a_file.read_text() == "keep"
    assert not (tmp_path / "c").exists()  # refused before the analysis

    out_dir = tmp_path / "o"
    out_dir.mkdir()
    (out_dir / "hardening.left.wav").write_bytes(b"my earlier stem")
    code, out, err = run(capsys, "separate", clip, *common, "-o", out_dir)
    assert code == 1
    line = one_line_error(err)
    assert "hardening.left.wav already exists" in line and "--force" in line
    assert (out_dir / "hardening.left.wav").read_bytes() == b"my earlier stem"
    assert sorted(p.name for p in out_dir.iterdir()) == ["hardening.left.wav"] and not (tmp_path / "c").exists()

    code, out, err = run(capsys, "separate", clip, *common, "-o", out_dir, "--force")
    assert code == 0, err
    audio, _ = media.read_audio(out_dir / "hardening.left.wav")
    assert audio.shape[0] == 2


def test_write_errors_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(encode.os, "replace", full)
    with pytest.raises(MediaError, match=r"cannot write out.png in .* \(the disk is full\): free some space"):
        media.write_png(target, np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(MediaError, match=r"\(the disk is full\)"):
        media.write_audio(tmp_path / "a.wav", np.zeros((1, 100), dtype=np.float32), 8000)
    assert list(tmp_path.iterdir()) == []


def test_flac_warns_when_it_clips_peaks(tmp_path):
    loud = np.zeros((2, 1000), dtype=np.float32)
    loud[0, 10:13] = [1.5, -2.0, 1.0]
    with pytest.warns(ClippingWarning, match=r"2 samples above full scale \(peak \+6.0 dBFS\) were clipped"):
        media.write_audio(tmp_path / "loud.flac", loud, 8000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        media.write_audio(tmp_path / "loud.wav", loud, 8000)  # float WAV keeps them: no warning
        media.write_audio(tmp_path / "full.flac", np.clip(loud, -1, 1), 8000)  # full scale itself is fine
    back, _ = media.read_audio(tmp_path / "loud.wav")
    assert back[0, 11] == -2.0


def _namespace_tool() -> list[str] | None:
    """A command that runs its argument in a new mount namespace where tmpfs can be mounted."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for prefix in ([unshare, "--mount"], [unshare, "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run([*prefix, "true"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


@pytest.mark.skipif(_namespace_tool() is None, reason="no mount namespaces on this machine")
def test_full_disk_and_read_only_folder_end_to_end(small_model, clip_factory, tmp_path):
    """`pixelsep separate` into a 64 KiB tmpfs (full after a few blocks) and into a read-only tmpfs."""
    clip = clip_factory("hardening.mp4")
    mounts = {"full": tmp_path / "full", "readonly": tmp_path / "readonly"}
    for folder in mounts.values():
        folder.mkdir()
    cache = tmp_path / "cache"
    args = [sys.executable, "-m", "host_bridge.cli.main", "separate", str(clip), "--at", "40,60",
            "--model", str(small_model), "--cache-dir", str(cache), "-q"]  # fmt: skip
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {mounts['full']} && mount -t tmpfs -o ro tmpfs {mounts['readonly']} && "
        f"{' '.join(args)} -o {mounts['full']}; echo rc=$?; {' '.join(args)} -o {mounts['readonly']}; echo rc=$?; "
        f"ls -a {mounts['full']}"
    )
    done = subprocess.run([*_namespace_tool(), "sh", "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)  # fmt: skip
    assert done.stdout.count("rc=1") == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("pixelsep: error:")]
    assert len(errors) == 2 and "Traceback" not in done.stderr, done.stderr
    assert "(the disk is full): free some space" in errors[0]
    assert "(the file system is read-only)" in errors[1]
    listing = done.stdout.split("rc=1")[-1].split()
    assert sorted(listing) == [".", ".."]  # nothing half-written is left on the full disk
