"""The extension builder's choice of wheels: one per requirement and Python, shared where the wheel allows."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_blender_extension", REPO / "installers" / "build_blender_extension.py")
builder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builder)


@pytest.mark.parametrize(
    ("wheel", "python", "runs"),
    [
        ("flatbuffers-25.12.19-py2.py3-none-any.whl", "3.11", True),
        ("onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl", "3.11", True),
        ("onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl", "3.13", False),
        ("onnxruntime-1.32.0-cp313-cp313-manylinux_2_28_x86_64.whl", "3.11", False),
        ("av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl", "3.13", True),  # the stable ABI: later Pythons too
        ("av-19.0.2-cp312-abi3-manylinux_2_28_x86_64.whl", "3.11", False),  # but not earlier ones
        ("protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl", "3.11", True),
    ],
)
def test_serves(wheel, python, runs):
    assert builder.serves(wheel, python) is runs


def test_select_wheels_shares_what_serves_both(tmp_path, monkeypatch):
    offered = {
        "3.11": ["av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl", "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                 "packaging-26.3-py3-none-any.whl"],
        "3.13": ["av-19.0.2-cp312-abi3-manylinux_2_28_x86_64.whl", "onnxruntime-1.32.0-cp313-cp313-manylinux_2_28_x86_64.whl",
                 "packaging-26.3-py3-none-any.whl"],
    }  # fmt: skip
    monkeypatch.setattr(builder, "download_wheels", lambda platform, python, cache: [tmp_path / n for n in offered[python]])
    chosen = sorted(p.name for p in builder.select_wheels("linux-x64", ("3.13", "3.11"), tmp_path))
    assert chosen == [
        "av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl",
        "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "onnxruntime-1.32.0-cp313-cp313-manylinux_2_28_x86_64.whl",
        "packaging-26.3-py3-none-any.whl",
    ]


def test_manifest_lists_the_wheels_and_one_permission():
    text = builder.manifest("0.1.0", "linux-x64", ["a-1-py3-none-any.whl", "b-2-cp313-cp313-manylinux_2_28_x86_64.whl"])
    data = tomllib.loads(text)
    assert data["id"] == builder.EXTENSION_ID and data["blender_version_min"] == "4.2.0"
    assert data["wheels"] == ["./wheels/a-1-py3-none-any.whl", "./wheels/b-2-cp313-cp313-manylinux_2_28_x86_64.whl"]
    assert data["platforms"] == ["linux-x64"] and list(data["permissions"]) == ["files"]
    assert data["license"] == ["SPDX:GPL-3.0-or-later"]
