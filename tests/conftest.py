"""Shared fixtures: a seeded untrained `small` model built once per session, and test clips.

Nothing a test reads may change: every input (the examples, the committed test data, the shipped
model, and the models and clips the fixtures make) is registered in :data:`INPUTS`; after each test
their size and mtime are compared with what they were, and at the end of the session their bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pixelsep_plugin import media

REPO = Path(__file__).resolve().parents[1]
INPUTS: dict[Path, tuple[int, int]] = {}  # file -> (size, mtime_ns) when registered
INPUT_HASHES: dict[Path, str] = {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def register_inputs(*roots: Path) -> None:
    """Record the files under ``roots`` (files or folders) as inputs that no test may change."""
    for root in roots:
        files = [root] if root.is_file() else [p for p in sorted(root.rglob("*")) if p.is_file()]
        for path in files:
            stat = path.stat()
            INPUTS[path] = (stat.st_size, stat.st_mtime_ns)
            INPUT_HASHES[path] = _sha256(path)


def _changed_inputs() -> list[str]:
    changed = []
    for path, (size, mtime_ns) in INPUTS.items():
        try:
            stat = path.stat()
        except FileNotFoundError:
            changed.append(f"{path} was removed")
            continue
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            changed.append(f"{path} was changed")
    return changed


@pytest.fixture(scope="session", autouse=True)
def _inputs_stay_untouched():
    register_inputs(*(REPO / name for name in ("examples", "tests/data", "tests/golden", "models/pixelsep-small")))
    yield
    changed = [f"{path} changed its bytes" for path, digest in INPUT_HASHES.items() if path.exists() and _sha256(path) != digest]
    assert not changed and not _changed_inputs(), changed or _changed_inputs()


@pytest.fixture(autouse=True)
def _test_leaves_inputs_alone(request):
    yield
    changed = _changed_inputs()
    if changed:
        for path in list(INPUTS):  # report once, then follow the new state
            if path.exists():
                INPUTS[path] = (path.stat().st_size, path.stat().st_mtime_ns)
        pytest.fail(f"{request.node.nodeid} changed its inputs: {'; '.join(changed)}")


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """A model package with the `small` configuration and seeded random weights."""
    from pixelsep_plugin.export.package import build_untrained

    out = tmp_path_factory.mktemp("models") / "small-test"
    build_untrained("small", out, seed=0, model_id="small-test")
    register_inputs(out)
    return out


@pytest.fixture(scope="session")
def separator(small_model, tmp_path_factory):
    from pixelsep_plugin.api import Separator

    return Separator(small_model, threads=2, cache_root=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def clip_factory(tmp_path_factory):
    """make(name, **kwargs) -> path of a clip made once per session with media.make_test_clip."""
    folder = tmp_path_factory.mktemp("clips")
    made: dict[str, Path] = {}

    def make(name: str, **kwargs) -> Path:
        if name not in made:
            kwargs.setdefault("seconds", 2.0)
            kwargs.setdefault("width", 160)
            kwargs.setdefault("height", 120)
            path = folder / name
            media.make_test_clip(path, **kwargs)
            register_inputs(path)
            made[name] = path
        return made[name]

    return make


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    """Synthetic flute and drum clips: 8 training solos, 4 validation solos, one test duet."""
    from synth_fixtures import make_tiny_world

    world = make_tiny_world(tmp_path_factory.mktemp("tiny-world"))
    register_inputs(*world.values())
    return world
