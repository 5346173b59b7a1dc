"""The synthetic performance generator: files, sidecars, determinism, splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synth_fixtures import TINY, TINY_INSTRUMENTS

from pixelsep_plugin import media
from pixelsep_plugin.synth import melodies
from pixelsep_plugin.synth.generate import make_clip, read_sidecar
from pixelsep_plugin.synth.instruments import VOCABULARY, get_instruments


def test_vocabulary_has_the_thirteen_instruments_with_pictures():
    from pixelsep_plugin.synth.video import sprite

    assert len(VOCABULARY) == 13
    for instrument in VOCABULARY:
        picture = sprite(instrument.emoji)
        alpha = np.asarray(picture.getchannel("A"))
        assert alpha.max() == 255 and picture.width > 60 and picture.height > 60, instrument.name
    with pytest.raises(ValueError, match="unknown instrument"):
        get_instruments(["theremin"])


def test_duet_files_and_sidecar(tiny_world):
    sidecar = read_sidecar(tiny_world["test"] / "duet-test.json")
    assert sidecar["kind"] == "duet" and sidecar["split"] == "test"
    info = media.probe(tiny_world["test"] / sidecar["video"])
    assert (info.width, info.height, info.sample_rate, info.num_channels) == (128, 96, 44100, 2)
    assert abs(info.duration_seconds - 7.0) < 0.1
    mixture, _ = media.read_audio(tiny_world["test"] / sidecar["video"])
    stems = []
    for performer in sidecar["performers"]:
        assert len(performer["boxes"]) == sidecar["num_frames"] == 84
        x0, y0, x1, y1 = np.array(performer["boxes"]).T
        assert np.all(x1 > x0) and np.all(y1 > y0) and np.all(x1 <= 128) and np.all(y1 <= 96)
        stem, rate = media.read_audio(tiny_world["test"] / performer["stem"])
        assert rate == 44100 and stem.shape == (2, 7 * 44100)
        assert np.sqrt(np.mean(stem**2)) > 1e-3
        stems.append(stem)
    # the clip's audio is the sum of the stems, up to AAC coding
    n = min(mixture.shape[1], stems[0].shape[1])
    residual = mixture[:, :n] - (stems[0] + stems[1])[:, :n]
    assert 10 * np.log10(np.sum(mixture[:, :n] ** 2) / np.sum(residual**2)) > 15
    # performers sit in their own halves (left slot first)
    left, right = (np.array(p["boxes"]).mean(axis=0) for p in sidecar["performers"])
    assert (left[0] + left[2]) / 2 < 64 < (right[0] + right[2]) / 2


def test_same_seed_same_clip(tmp_path):
    paths = [make_clip(tmp_path / d, "solo", "solo", "train", 5, TINY, TINY_INSTRUMENTS) for d in ("a", "b")]
    first, second = (json.loads(p.read_text()) for p in paths)
    assert first == second
    stems = [media.read_audio(p.parent / first["performers"][0]["stem"])[0] for p in paths]
    np.testing.assert_array_equal(stems[0], stems[1])
    other = json.loads(make_clip(tmp_path / "c", "solo", "solo", "train", 6, TINY, TINY_INSTRUMENTS).read_text())
    assert other["performers"][0]["boxes"] != first["performers"][0]["boxes"]


def test_splits_never_share_a_melody_or_seed():
    assert melodies.split_of("bach/bwv66.6") == melodies.split_of("bach/bwv66.6")
    shares = [melodies.split_of(f"work{i}") for i in range(2000)]
    assert 0.75 < shares.count("train") / 2000 < 0.85 and shares.count("test") > 120
    train = set(melodies.generated_seeds_for_split("train", 0, 50))
    test = set(melodies.generated_seeds_for_split("test", 0, 50))
    assert not train & test
    from pixelsep_plugin.synth.generate import clip_names

    names = {split: {seed for _, seed in clip_names("duet", split, 100)} for split in ("train", "val", "test")}
    assert not names["train"] & names["test"] and not names["val"] & names["test"]


def test_corpus_melodies_are_read_from_music21():
    found = melodies._extract_corpus(bach_works=2, oneill_files=0)
    assert len(found) >= 4  # four chorale parts each
    for melody in found:
        pitches = [p for p, _, _ in melody["notes"]]
        onsets = [o for _, o, _ in melody["notes"]]
        assert 30 < min(pitches) <= max(pitches) < 100 and onsets == sorted(onsets)
    rng = np.random.default_rng(0)
    fitted = melodies.fit_range(np.array([40, 52, 64, 88]), 55, 82, rng)
    assert fitted.min() >= 55 and fitted.max() <= 82


def test_synth_cli_reports_bad_input(tmp_path, capsys):
    from host_bridge.cli.main import main

    assert main(["synth", "duet", "-o", str(tmp_path), "--count", "1", "--instruments", "kazoo"]) == 1
    assert "unknown instrument" in capsys.readouterr().err
    assert main(["synth", "trio", "-o", str(tmp_path), "--count", "1", "--instruments", "flute,drum"]) == 1
    assert "needs 3 different instruments" in capsys.readouterr().err
