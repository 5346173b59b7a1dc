"""The inference path as a user without torch runs it: an environment with numpy 1.26 (Blender's),
ONNX Runtime and PyAV only (no torch, no scipy; `make infer-env` provisions it as .venv-infer), and the
committed tiny model package (tests/data/tiny-model, built by
`python -m pixelsep_plugin.export.build_untrained --config tiny --seed 0 --id tiny-test`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
INFER_PYTHON = REPO / ".venv-infer" / "bin" / "python"
TINY_MODEL = REPO / "tests" / "data" / "tiny-model"

RUN = r"""
import sys
from host_bridge.cli.main import main
code = main(sys.argv[1:])
import numpy
assert numpy.__version__ == "1.26.4", numpy.__version__
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "safetensors", "onnx", "scipy"))
assert not leaked, leaked
sys.exit(code)
"""


@pytest.fixture(scope="module")
def infer_python() -> Path:
    if not INFER_PYTHON.is_file():
        pytest.fail("the torch-free environment .venv-infer is missing: run `make infer-env` (make test does)")
    probe = "import importlib.util as u, numpy; print(numpy.__version__, *(u.find_spec(m) is None for m in ('torch', 'scipy')))"
    out = subprocess.run([str(INFER_PYTHON), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1.26.4", "True", "True"], out
    return INFER_PYTHON


def run_without_torch(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-c", RUN, *args], cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO),
        "PATH": "/usr/bin:/bin", "HOME": str(REPO / ".cache")},
    )  # fmt: skip


def test_separate_render_and_heatmap_without_torch(infer_python, clip_factory, tmp_path):
    from pixelsep_plugin import media
    from pixelsep_plugin.api import Separator, write_stems
    from pixelsep_plugin.runtime.query import Point, Source

    clip = clip_factory("notorch.mp4", seconds=3.0, sample_rate=44100, channel_layout="stereo")
    cache, out = str(tmp_path / "cache"), tmp_path / "out"
    model = ["--model", str(TINY_MODEL), "--cache-dir", cache, "-q"]
    steps = [
        ["info", "--model", str(TINY_MODEL)],
        ["separate", str(clip), "--at", "40,60@1", "--name", "left", "-o", str(out), "--recipe", "edit.json", *model],
        ["render", str(out / "edit.json"), "--gain", "left=-6", "--no-stems", "--video", str(tmp_path / "r.mp4"), *model],
        ["heatmap", str(clip), "--at", "1", "-o", str(tmp_path / "h.png"), *model],
    ]
    for args in steps:
        result = run_without_torch(infer_python, *args)
        assert result.returncode == 0, (args[0], result.stderr)
    assert "tiny-test" in run_without_torch(infer_python, *steps[0]).stdout
    assert media.probe(tmp_path / "r.mp4").has_audio and media.read_png(tmp_path / "h.png").shape == (120, 160, 3)

    # the same click with numpy 2 and scipy's FFT here gives the same stem
    separator = Separator(TINY_MODEL, threads=1, cache_root=tmp_path / "cache2")
    analysis, _ = separator.analyze(clip)
    here = write_stems(separator.separate(analysis, [Source("left", (Point(40, 60, 1.0),))]), tmp_path / "here", "notorch")
    theirs, _ = media.read_audio(out / "notorch.left.wav")
    ours, _ = media.read_audio(here.stems["left"])
    assert theirs.shape == ours.shape and np.abs(theirs).max() > 1e-3
    # numpy 1.26's FFT works in float64 where scipy's keeps float32: the stems agree to rounding
    snr_db = 10 * np.log10(np.sum(ours.astype(np.float64) ** 2) / np.sum((theirs - ours).astype(np.float64) ** 2))
    assert snr_db > 50, snr_db


def test_the_engine_never_imports_a_host():
    import ast

    offenders = []
    for path in sorted((REPO / "pixelsep_plugin").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "host_bridge"]
    assert offenders == []
