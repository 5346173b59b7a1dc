"""Effect chains in renders: every stream stays aligned with the stem through latency, the stem's length
is kept or tails ring on, and the remix sums the processed stems with their gains."""

from __future__ import annotations

import numpy as np
import pytest

from pixelsep_plugin import effects, media
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.api import render_recipe
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Box, Point, Source


class LatentGain:
    """A gain behind a delay line of ``latency`` samples, handing out only whole 512-sample frames (as
    plugins with latency and fixed frames do), with its latency removed: the stream stays aligned."""

    def __init__(self, gain: float, latency: int):
        self.gain, self.latency = gain, latency
        self.held = np.zeros((2, latency), np.float32)  # what the delay line holds before the input
        self.dropped = 0

    def _out(self, ready: np.ndarray) -> np.ndarray:
        drop = min(self.latency - self.dropped, ready.shape[1])
        self.dropped += drop
        return ready[:, drop:] * np.float32(self.gain)

    def process(self, block):
        self.held = np.concatenate([self.held, block], axis=1)
        n = self.held.shape[1] // 512 * 512
        ready, self.held = self.held[:, :n], self.held[:, n:]
        return self._out(ready)

    def flush(self):
        ready = np.concatenate([self.held, np.zeros((2, self.latency), np.float32)], axis=1)
        self.held = self.held[:, :0]
        return self._out(ready)


class Echo:
    """One echo ``delay`` samples later at half level; its tail (the last echo) comes out on flush."""

    def __init__(self, delay: int):
        self.delay = delay
        self.line = np.zeros((2, delay), np.float32)

    def process(self, block):
        both = np.concatenate([self.line, block], axis=1)
        out = block + 0.5 * both[:, : block.shape[1]]
        self.line = both[:, block.shape[1] :]
        return out

    def flush(self):
        return 0.5 * self.line


@pytest.fixture(autouse=True)
def test_effects(monkeypatch):
    monkeypatch.setitem(
        effects.BUILDERS, "LatentGain", lambda e, ctx: LatentGain(e.parameters["gain"], e.parameters["latency"])
    )
    monkeypatch.setitem(effects.BUILDERS, "Echo", lambda e, ctx: Echo(int(e.parameters["seconds"] * ctx.sample_rate)))


@pytest.fixture(scope="module")
def edit(separator, clip_factory):
    clip = clip_factory("fx.mp4", seconds=2.0)
    analysis, _ = separator.analyze(clip)
    sources = [Source("red", (Point(30, 60, 1.0),)), Source("blue", (Box(120, 30, 160, 90, 0.5),))]
    recipe = rcp.new_recipe(rcp.clip_ref(clip), separator.package.model_id, separator.package.checksum, sources)
    return separator, analysis, recipe


def _read(path):
    return media.read_audio(path)[0]


def test_a_chain_with_latency_stays_aligned_with_its_stem(edit, tmp_path):
    separator, analysis, recipe = edit
    recipe = rcp.apply_gains(recipe, [("red", 6.0), ("residual", -6.0)])
    recipe.source("red").effects.append(rcp.Effect("LatentGain", {"gain": 0.5, "latency": 1000}))
    recipe.residual.effects.append(rcp.Effect("LatentGain", {"gain": 2.0, "latency": 77}))
    result = render_recipe(separator, analysis, recipe, tmp_path)
    red, blue, residual = _read(result.stems["red"]), _read(result.stems["blue"]), _read(result.residual)
    assert set(result.processed) == {"red", "residual"}
    np.testing.assert_allclose(_read(result.processed["red"]), 0.5 * red, atol=1e-7)
    np.testing.assert_allclose(_read(result.processed["residual"]), 2.0 * residual, atol=1e-7)
    remix = _read(result.remix)
    assert remix.shape == red.shape
    expected = 10 ** (6 / 20) * 0.5 * red + blue + 10 ** (-6 / 20) * 2.0 * residual
    np.testing.assert_allclose(remix, expected, atol=1e-5)


def test_tails_are_cut_or_ring(edit, tmp_path):
    separator, analysis, recipe = edit
    recipe = rcp.apply_gains(recipe, [])
    recipe.source("blue").effects.append(rcp.Effect("Echo", {"seconds": 0.25}))
    cut = render_recipe(separator, analysis, recipe, tmp_path / "cut")
    blue = _read(cut.stems["blue"])
    delay = int(0.25 * 44100)
    echoed = blue + 0.5 * np.pad(blue, ((0, 0), (delay, 0)))[:, : blue.shape[1]]
    np.testing.assert_allclose(_read(cut.processed["blue"]), echoed, atol=1e-6)
    assert _read(cut.remix).shape == blue.shape
    rung = render_recipe(separator, analysis, recipe, tmp_path / "ring", tail="ring")
    remix, processed = _read(rung.remix), _read(rung.processed["blue"])
    assert processed.shape[1] == remix.shape[1] == blue.shape[1] + delay
    np.testing.assert_allclose(processed[:, -delay:], 0.5 * blue[:, -delay:], atol=1e-6)
    np.testing.assert_allclose(remix[:, -delay:], 0.5 * blue[:, -delay:], atol=1e-6)  # only the tail is left


def test_unknown_effects_are_one_line():
    with pytest.raises(InputError, match="unknown effect 'no such thing'"):
        effects.builder_for("no such thing")


def test_render_tail_from_the_command_line(small_model, clip_factory, tmp_path, capsys):
    from host_bridge.cli.main import main

    clip = clip_factory("fx-cli.mp4", seconds=2.0)
    common = ["--model", small_model, "--cache-dir", tmp_path / "c", "-q"]
    assert main([str(a) for a in ("separate", clip, "--at", "30,60", "--name", "red", "-o", tmp_path / "e",
                                  "--recipe", "e.json", *common)]) == 0  # fmt: skip
    edit = rcp.load(tmp_path / "e" / "e.json")
    edit.source("red").effects.append(rcp.Effect("Echo", {"seconds": 0.5}))
    rcp.save(edit, tmp_path / "e" / "e.json")
    assert main([str(a) for a in ("render", tmp_path / "e" / "e.json", "--tail", "ring", *common)]) == 0
    remix = _read(tmp_path / "e" / "fx-cli.remix.wav")
    assert remix.shape[1] == _read(tmp_path / "e" / "fx-cli.red.wav").shape[1] + 22050
