"""The inference path runs with numpy 1.26 (Blender's), onnxruntime and PyAV alone: torch cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NUMPY1 = REPO / ".cache" / "numpy1.26"

BLOCKED_RUN = r"""
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "safetensors", "onnx", "onnxscript"):
            raise ImportError(f"{name} may not be imported on the inference path")

sys.meta_path.insert(0, NoTorch())
from host_bridge.cli.main import main
code = main(sys.argv[1:])
import numpy
assert numpy.__version__.startswith("1.26"), numpy.__version__
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "safetensors", "onnx"))
assert not leaked, leaked
sys.exit(code)
"""


@pytest.fixture(scope="module")
def numpy1_path() -> Path:
    """numpy 1.26 installed into a folder that goes first on PYTHONPATH (installed once, from PyPI)."""
    if not (NUMPY1 / "numpy").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--only-binary",
                ":all:",
                "--target",
                str(NUMPY1),
                "numpy==1.26.4",
            ],
            check=True,
        )
    return NUMPY1


@pytest.mark.parametrize("command", ["separate", "heatmap", "info"])
def test_inference_without_torch_under_numpy_1_26(numpy1_path, small_model, clip_factory, tmp_path, command):
    clip = clip_factory("notorch.mp4", seconds=3.0, sample_rate=44100, channel_layout="stereo")
    args = {
        "separate": ["separate", str(clip), "--at", "40,60", "-o", str(tmp_path / "out")],
        "heatmap": ["heatmap", str(clip), "--at", "1", "-o", str(tmp_path / "h.png")],
        "info": ["info"],
    }[command] + ["--model", str(small_model)]
    if command != "info":
        args += ["--cache-dir", str(tmp_path / "cache"), "-q"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(numpy1_path), str(REPO)]))
    result = subprocess.run([sys.executable, "-c", BLOCKED_RUN, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if command == "separate":
        assert (tmp_path / "out" / "notorch.source1.wav").is_file()


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
