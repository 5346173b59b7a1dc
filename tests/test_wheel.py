"""The model with `pip install`: the wheel carries the default model, and model lookup finds it.

The end-to-end test builds the wheel from the files a fresh clone would have, installs it with pip
into a new virtual environment and runs the installed `pixelsep` from an unrelated folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin.errors import ModelError
from pixelsep_plugin.modelstore import registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "duet.mp4"
SHIPPED = REPO / "models" / "pixelsep-small"
# Everything a wheel may hold: the code packages, the shipped model, the metadata.
WHEEL_PREFIXES = ("pixelsep_plugin/", "host_bridge/", "pixelsep_models/pixelsep-small/", "pixelsep-")


def _clone_files(dest: Path) -> Path:
    """Copy the files a fresh clone would have (tracked, plus untracked files git does not ignore)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # listed in the index but deleted in the working tree: not in a clone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _clean_env() -> dict[str, str]:
    """The environment of a user who has only the installed wheel: no model folders, no repository on the path."""
    dropped = ("PIXELSEP_MODELS", "PIXELSEP_CACHE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {key: value for key, value in os.environ.items() if key not in dropped}


def _run(command: list, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=_clean_env(), capture_output=True, text=True)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_installed_wheel_carries_the_model_and_separates_the_duet(tmp_path):
    source = _clone_files(tmp_path / "clone")
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels]
    _run([*build, source], cwd=tmp_path)
    (wheel,) = wheels.glob("pixelsep-*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if not n.startswith(WHEEL_PREFIXES)] == []
    shipped = sorted(n for n in names if n.startswith("pixelsep_models/"))
    assert shipped == sorted(f"pixelsep_models/pixelsep-small/{p.name}" for p in SHIPPED.iterdir())
    assert "pixelsep_plugin/modelstore/registry.py" in names and "host_bridge/cli/main.py" in names
    data = [p.relative_to(source).as_posix() for p in (source / "pixelsep_plugin").rglob("*.json")]
    assert [name for name in data if name not in names] == []  # e.g. the recipe's JSON schema

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel], cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [
            venv / "bin" / "python",
            "-c",
            "import pixelsep_plugin; from pixelsep_plugin.modelstore.registry import resolve_model; "
            "print(pixelsep_plugin.__file__); print(resolve_model())",
        ],
        cwd=elsewhere,
    ).splitlines()
    package_file, default_model = (Path(line).resolve() for line in where)
    assert package_file.is_relative_to(venv.resolve()) and not package_file.is_relative_to(REPO)
    assert default_model.is_relative_to(venv.resolve()) and default_model.match("pixelsep_models/pixelsep-small")

    info = _run([venv / "bin" / "pixelsep", "info"], cwd=elsewhere)
    assert "installed models: pixelsep-small\n" in info
    assert "model: pixelsep-small " in info and "(trained)" in info

    out = tmp_path / "out"
    clicks = ["--at", "136,88@5", "--name", "long-drum", "--at", "365,186@5", "--name", "accordion"]
    command = [venv / "bin" / "pixelsep", "separate", EXAMPLE, *clicks, "-o", out, "--cache-dir", tmp_path / "cache"]
    _run([*command, "-q"], cwd=elsewhere)
    mixture, rate = media.read_audio(EXAMPLE)
    stems = {}
    for name in ("long-drum", "accordion", "residual"):
        stems[name], stem_rate = media.read_audio(out / f"duet.{name}.wav")
        assert stem_rate == rate and stems[name].shape == mixture.shape
    np.testing.assert_allclose(sum(stems.values()), mixture, atol=1e-3)


def test_models_are_looked_up_in_pixelsep_models_first_then_the_checkout(tmp_path, monkeypatch):
    mine = tmp_path / "mine" / "pixelsep-small"
    shutil.copytree(SHIPPED, mine)
    monkeypatch.setenv("PIXELSEP_MODELS", os.pathsep.join([str(tmp_path / "missing"), str(tmp_path / "mine")]))
    assert registry.resolve_model() == mine
    assert registry.resolve_model("pixelsep-small") == mine
    assert registry.resolve_model(SHIPPED) == SHIPPED  # a path is taken as it is
    monkeypatch.delenv("PIXELSEP_MODELS")
    assert registry.resolve_model("pixelsep-small") == SHIPPED
    folders = registry.model_folders()
    assert len({f.resolve() for f in folders}) == len(folders)  # an editable install's package is the checkout


def test_without_any_model_the_error_says_what_to_do_without_make(monkeypatch):
    monkeypatch.delenv("PIXELSEP_MODELS", raising=False)
    monkeypatch.setattr(registry, "_repository_models", list)
    monkeypatch.setattr(registry, "_package_models", list)
    with pytest.raises(ModelError) as default:
        registry.resolve_model()
    with pytest.raises(ModelError) as named:
        registry.resolve_model("pixelsep-small")
    for message in (str(default.value), str(named.value)):
        assert "\n" not in message and "make" not in message and "installed: none" in message
    assert "--model PATH" in str(default.value) and "PIXELSEP_MODELS" in str(default.value)
