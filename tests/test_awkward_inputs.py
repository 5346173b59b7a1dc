"""Every CLI command over a corpus of awkward inputs (tests/awkward_corpus.py).

For each input and command: exit 0 with sane outputs (stems at the clip's rate and channel count, as
long as its sound, summing back to it), or exit 1 with one ``pixelsep: error: `` line and no
traceback. Never a partial or temporary file in an output folder, never a changed input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from awkward_corpus import CASE_NAMES, COMMANDS, Case, make_corpus

from host_bridge.cli.main import main
from pixelsep_plugin import media

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = REPO / "tests" / "data" / "tiny-model"
# samples the decoded sound may run past what was encoded: the last AAC frame's padding
CODEC_FRAME_SAMPLES = 1024

# case -> why it fails today: the cause, in a file outside the CLI
KNOWN_FAILURES: dict[str, str] = {
}


def _marks(name: str) -> list:
    if name in KNOWN_FAILURES:
        return [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])]
    return []


@pytest.fixture(scope="module")
def corpus_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("awkward") / "corpus"


@pytest.fixture(scope="module")
def corpus(corpus_folder) -> dict[str, Case]:
    cases = make_corpus(corpus_folder)
    assert tuple(case.name for case in cases) == CASE_NAMES
    return {case.name: case for case in cases}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("awkward-cache")


def _fingerprint(path: Path) -> tuple:
    """What must not change about an input: its kind, and a regular file's bytes, size and mtime."""
    link = os.lstat(path)
    if not path.is_file():
        return (link.st_mode, link.st_mtime_ns)
    info = path.stat()
    return (link.st_mode, link.st_mtime_ns, info.st_mode, info.st_size, info.st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest())  # fmt: skip


def _leftovers(folder: Path) -> list[str]:
    """Temporary or hidden files (a write that did not finish) under ``folder``."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name)


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _check_refusal(code: int, err: str, expected: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("pixelsep: error: ")]
    problems = []
    if code != 1:
        problems.append(f"exit {code}, not 1")
    if "Traceback" in err or len(errors) != 1 or lines[-1:] != errors:
        problems.append(f"stderr is not one error line: {err!r}")
    elif expected not in errors[0]:
        problems.append(f"error {errors[0]!r} does not say {expected!r}")
    if any(not (line.startswith("warning: ") or line.startswith("pixelsep: error: ")) for line in lines):
        problems.append(f"stray stderr: {err!r}")
    return problems


def _check_audio(path: Path, case: Case, reference: np.ndarray | None) -> list[str]:
    """A stem or remix: the clip's rate and channels, its sound's length (on the picture's clock)."""
    if not path.is_file():
        return [f"{path.name} was not written"]
    audio, rate = media.read_audio(path)
    problems = []
    if case.sample_rate and (rate, audio.shape[0]) != (case.sample_rate, case.num_channels):
        problems.append(f"{path.name} is {rate} Hz x {audio.shape[0]}, not {case.sample_rate} Hz x {case.num_channels}")
    if reference is not None and case.audio_seconds is not None:
        encoded = int(round(case.audio_seconds * rate))  # audio files start with the sound, wherever it starts
        decoded = reference.shape[1]
        if audio.shape[1] != decoded or not 0 <= audio.shape[1] - encoded < CODEC_FRAME_SAMPLES:
            problems.append(
                f"{path.name} has {audio.shape[1]} samples; the clip's sound decodes to {decoded} ({encoded} encoded)"
            )
    if not np.all(np.isfinite(audio)):
        problems.append(f"{path.name} holds NaN or inf")
    return problems


def _separate(capsys, case: Case, out: Path, cache: Path) -> tuple[int, str, str]:
    x, y = case.point
    return _run(capsys, "separate", case.path, "--at", f"{x},{y}@{case.time_seconds:g}", "-o", out,
                "--recipe", "r.json", "--model", TINY_MODEL, "--cache-dir", cache, "-q")  # fmt: skip


def _command(capsys, command: str, case: Case, work: Path, cache: Path) -> tuple[int, str, str, Path]:
    """Run ``command`` on the case; returns (exit, stdout, stderr, the folder it writes in)."""
    model = ("--model", TINY_MODEL, "--cache-dir", cache, "-q")
    x, y = case.point
    at = f"{x},{y}@{case.time_seconds:g}"
    out = work / f"{command} Ausgabe ♪ é"  # output folders with spaces and non-ASCII too
    if command == "analyze":
        return (*_run(capsys, "analyze", case.path, *model), out)
    if command == "separate":
        return (*_separate(capsys, case, out, cache), out)
    if command == "heatmap":
        return (*_run(capsys, "heatmap", case.path, "--at", f"{case.time_seconds:g}", "-o", out / "h.png", *model), out)
    if command == "remix":
        return (*_run(capsys, "remix", case.path, "--at", at, "--gain", "source1=-6", "-o", out / "m.wav", *model), out)
    recipe = work / "separate Ausgabe ♪ é" / "r.json"
    if command == "render":
        return (*_run(capsys, "render", recipe, "-o", out, *model), out)
    return (*_run(capsys, "timeline", recipe, "-o", out / "t.otio", *model), out)


def _collect_urls(found: list[str]):
    """A json object_hook that collects every "target_url" into ``found``."""

    def hook(obj: dict) -> dict:
        if isinstance(obj.get("target_url"), str):
            found.append(obj["target_url"])
        return obj

    return hook


def _check_ok(command: str, case: Case, out_dir: Path, stdout: str) -> list[str]:
    reference = None
    if case.audio_seconds is not None and command in ("separate", "remix", "render"):
        reference = media.read_audio(case.path)[0]
    stem = case.path.stem
    problems: list[str] = []
    if command == "analyze":
        if "analysis of" not in stdout:
            problems.append(f"analyze printed {stdout!r}")
    elif command == "separate":
        parts = [_check_audio(out_dir / f"{stem}.{name}.wav", case, reference) for name in ("source1", "residual")]
        problems += [p for part in parts for p in part]
        if not problems and reference is not None:
            total = sum(media.read_audio(out_dir / f"{stem}.{name}.wav")[0] for name in ("source1", "residual"))
            n = min(total.shape[1], reference.shape[1])
            if np.max(np.abs(total[:, :n] - reference[:, :n]), initial=0.0) > 1e-3:
                problems.append("source1 + residual is not the clip's sound")
        if not (out_dir / "r.json").is_file():
            problems.append("the recipe was not written")
    elif command == "heatmap":
        png = out_dir / "h.png"
        if not png.is_file():
            return ["h.png was not written"]
        info = media.probe(case.path)
        picture = media.read_png(png)
        if picture.shape[:2] != (info.height, info.width):
            problems.append(f"h.png is {picture.shape[1]}x{picture.shape[0]}, the clip {info.width}x{info.height}")
    elif command == "remix":
        problems += _check_audio(out_dir / "m.wav", case, reference)
    elif command == "render":
        written = sorted(p.name for p in out_dir.iterdir())
        if not any(".source1." in name for name in written) or not any(".remix." in name for name in written):
            problems.append(f"render did not write the stem and the remix: {written}")
        for name in written:
            problems += _check_audio(out_dir / name, case, reference)
    elif command == "timeline":
        timeline = out_dir / "t.otio"
        if not timeline.is_file():
            return ["t.otio was not written"]
        found: list[str] = []
        json.loads(timeline.read_text(encoding="utf-8"), object_hook=_collect_urls(found))
        missing = [url for url in found if not Path(unquote(urlparse(url).path)).is_file()]
        if len(found) < 3 or missing:
            problems.append(f"t.otio references {len(found)} media, missing: {missing}")
    return problems


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in CASE_NAMES])
def test_every_command_on_an_awkward_input(name, corpus, corpus_folder, cache_dir, tmp_path, capsys):
    case = corpus[name]
    inputs = sorted(corpus_folder.rglob("*"))
    before = {p: _fingerprint(p) for p in inputs if p.exists() or p.is_symlink()}
    problems: list[str] = []
    separated = False
    for command in COMMANDS:
        if command in ("render", "timeline") and not separated:
            continue  # a recipe exists only where separate succeeded
        expected = case.expected(command)
        code, stdout, stderr, out_dir = _command(capsys, command, case, tmp_path, cache_dir)
        where = f"{command}: "
        if expected == "ok":
            if code != 0:
                problems.append(where + f"exit {code}: {stderr.strip()!r}")
            else:
                problems += [where + p for p in _check_ok(command, case, out_dir, stdout)]
                separated = separated or command == "separate"
        else:
            problems += [where + p for p in _check_refusal(code, stderr, expected)]
            if out_dir.exists() and any(out_dir.iterdir()):
                problems.append(where + f"refused but wrote {sorted(p.name for p in out_dir.iterdir())}")
        problems += [where + f"left {leftover}" for leftover in _leftovers(tmp_path)]
        problems += [where + f"left {p.name} in the cache" for p in cache_dir.rglob("*.tmp*")]
    after = {p: _fingerprint(p) for p in before if p.exists() or p.is_symlink()}
    problems += [f"input {p.name} changed" for p in before if after.get(p) != before[p]]
    assert not problems, f"{case.name} ({case.made}):\n" + "\n".join(problems)


def _energy_range(stdout: str) -> tuple[float, float]:
    share = re.search(r"energy share ([\d.]+)-([\d.]+)", stdout)
    assert share is not None, stdout
    return float(share.group(1)), float(share.group(2))


def test_the_heatmap_of_digital_silence_is_flat(corpus, cache_dir, tmp_path, capsys):
    """With the shipped (trained) model: the tiny untrained model's maps are flat for every clip."""
    shipped = ("--at", "0.5", "--cache-dir", cache_dir, "-q")  # no --model: the shipped default
    code, stdout, stderr = _run(capsys, "heatmap", corpus["plain"].path, "-o", tmp_path / "p.png", *shipped)
    low, high = _energy_range(stdout)
    assert code == 0 and high - low > 0.1, "the shipped model should map the tones of plain.mp4 unevenly"
    code, stdout, stderr = _run(capsys, "heatmap", corpus["silence"].path, "-o", tmp_path / "s.png", *shipped)
    low, high = _energy_range(stdout)
    assert code == 0 and (low, high) == (0.0, 0.0), f"silence maps to energy share {low:.2f}-{high:.2f}"


def test_clicks_on_a_clip_whose_sound_starts_late_count_on_the_pictures_clock(corpus, cache_dir, tmp_path, capsys):
    """The sound starts 2 s after the first picture: a click at 2.5 s (picture clock) is 0.5 s into the
    sound; the recipe keeps 2.5 s; the stems start with the sound and a note says where to place them;
    a click before the sound starts is refused."""
    case = corpus["audio-starts-late"]
    code, stdout, stderr = _separate(capsys, case, tmp_path / "o", cache_dir)
    assert code == 0, stderr
    assert "starts 2.000 s after its picture" in stderr and "place them at +2.000 s" in stderr
    recipe = json.loads((tmp_path / "o" / "r.json").read_text())
    assert recipe["sources"][0]["parts"][0]["time_seconds"] == 2.5 and recipe["clip"]["audio"]["offset_seconds"] == 2
    early = dataclasses.replace(case, time_seconds=1.0)
    code, stdout, stderr = _separate(capsys, early, tmp_path / "early", cache_dir)
    assert code == 1 and "is before the sound of late-audio.mkv starts (2.00 s)" in stderr
    code, stdout, stderr = _run(capsys, "heatmap", case.path, "--at", "1", "-o", tmp_path / "h.png", "--model",
                                TINY_MODEL, "--cache-dir", cache_dir, "-q")  # fmt: skip
    assert code == 1 and "has no sound (its sound runs from 2.00 s to 3.0" in stderr


def test_the_engine_clock_counts_from_the_sound(corpus):
    from pixelsep_plugin.recipe import on_sound_clock
    from pixelsep_plugin.runtime.query import Box, Point, Source

    sources = [Source("a", (Point(1, 2, 2.5), Box(0, 0, 4, 4, 3.0), Point(3, 3, None)))]
    moved = on_sound_clock(sources, 2.0)
    assert [p.time_seconds for p in moved[0].parts] == [0.5, 1.0, None]
    assert on_sound_clock(sources, 0.0) == sources
