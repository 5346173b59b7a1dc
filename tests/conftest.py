"""Shared fixtures: a seeded untrained `small` model built once per session, and test clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelsep_plugin import media

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """A model package with the `small` configuration and seeded random weights."""
    from pixelsep_plugin.export.package import build_untrained

    out = tmp_path_factory.mktemp("models") / "small-test"
    build_untrained("small", out, seed=0, model_id="small-test")
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
            made[name] = path
        return made[name]

    return make


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    """Synthetic flute and drum clips: 8 training solos, 4 validation solos, one test duet."""
    from synth_fixtures import make_tiny_world

    return make_tiny_world(tmp_path_factory.mktemp("tiny-world"))
