"""Faults a machine has: processes killed or stopped mid-analysis, several processes on one clip and one
cache, a damaged cache entry, a full cache disk. Nothing is left half-written and the next run recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_bridge.cli.main import main
from pixelsep_plugin import media
from pixelsep_plugin.runtime import cache

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = REPO / "tests" / "data" / "tiny-model"


def pixelsep(*args: str | Path) -> list[str]:
    """The installed command, as a user runs it."""
    return [str(Path(sys.executable).parent / "pixelsep"), *map(str, args)]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Long enough (40 s) that an analysis can be caught in the middle."""
    path = tmp_path_factory.mktemp("faults") / "long.mp4"
    media.make_test_clip(path, seconds=40.0, width=160, height=120, fps=10)
    return path


def temp_folders(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir() and p.name.startswith(".")] if root.is_dir() else []


def entries(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []


def start_analysis(clip: Path, cache_dir: Path) -> subprocess.Popen:
    """Start `pixelsep analyze` and return it stopped (SIGSTOP) in the middle of its analysis: as soon
    as its temporary folder exists. The caller signals it, then lets it go on with SIGCONT."""
    # (as from a terminal: a test run started in the background ignores SIGINT, and a child would inherit that)
    process = subprocess.Popen(pixelsep("analyze", clip, "--model", TINY_MODEL, "--cache-dir", cache_dir),
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 60
    while not temp_folders(cache_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGSTOP)
    assert temp_folders(cache_dir), "the analysis never started (or ended before it could be stopped)"
    return process


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_stopped_analysis_removes_its_temporary_folder(long_clip, tmp_path, how):
    process = start_analysis(long_clip, tmp_path / "cache")
    process.send_signal(getattr(signal, how))
    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == (143 if how == "SIGTERM" else 130), err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("pixelsep: ") and "nothing was left half-written" in lines[-1] and "Traceback" not in err
    assert temp_folders(tmp_path / "cache") == [] and entries(tmp_path / "cache") == []


def test_after_kill_9_the_next_run_removes_the_leftover_and_analyses(long_clip, tmp_path):
    root = tmp_path / "cache"
    process = start_analysis(long_clip, root)
    process.kill()  # SIGKILL ends a stopped process too
    process.communicate(timeout=60)
    (leftover,) = temp_folders(root)
    old = time.time() - 2 * cache.STALE_TEMP_SECONDS
    os.utime(leftover, (old, old))
    done = subprocess.run(pixelsep("analyze", long_clip, "--model", TINY_MODEL, "--cache-dir", root, "-q"),
                          cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not leftover.exists() and temp_folders(root) == [] and len(entries(root)) == 1


def test_four_processes_analysing_one_clip_into_one_cache(long_clip, tmp_path):
    root = tmp_path / "cache"
    processes = [
        subprocess.Popen(pixelsep("analyze", long_clip, "--model", TINY_MODEL, "--cache-dir", root), cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for _ in range(4)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    assert not any("Traceback" in err for _, _, err in results)
    outs = [out for _, out, _ in results]
    assert sum("from cache" in out for out in outs) == 3  # one analysed, three waited and opened its entry
    assert len(entries(root)) == 1 and temp_folders(root) == []


def test_a_damaged_entry_is_analysed_again_and_the_user_told_why(clip_factory, tmp_path, capsys):
    clip = clip_factory("faults.mp4")
    args = ["analyze", str(clip), "--model", str(TINY_MODEL), "--cache-dir", str(tmp_path / "c"), "-q"]
    assert main(args) == 0
    (entry,) = entries(tmp_path / "c")
    components = next(entry.glob("components.*"))
    components.write_bytes(components.read_bytes()[:-100])  # truncated
    capsys.readouterr()
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "warning: the cached analysis of faults.mp4 is damaged (components" in err and "analysing it again" in err
    assert "from cache" not in out
    assert main(args) == 0 and "from cache" in capsys.readouterr()[0]


def test_a_full_cache_disk_is_one_line(clip_factory, tmp_path):
    from test_hardening import _namespace_tool

    tool = _namespace_tool()
    if tool is None:
        pytest.skip("no mount namespaces on this machine")
    clip = clip_factory("faults.mp4")
    small = tmp_path / "small"
    small.mkdir()
    command = " ".join(pixelsep("analyze", clip, "--model", TINY_MODEL, "--cache-dir", small / "cache"))
    done = subprocess.run([*tool, "sh", "-c", f"mount -t tmpfs -o size=32k tmpfs {small} && {command}; echo rc=$?; "
                           f"find {small} -mindepth 2"], capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert "rc=1" in done.stdout, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors[-1].startswith("pixelsep: error: cannot write the analysis in") and "(the disk is full)" in errors[-1]
    assert "Traceback" not in done.stderr
    left = done.stdout.split("rc=1")[1].split()
    assert left and all(Path(p).name.endswith(".lock") and Path(p).parent == small / "cache" for p in left), left
