"""The synthetic performance generator: files, sidecars, determinism, splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synth_fixtures import TINY, TINY_INSTRUMENTS

from pixelsep_plugin import media
from pixelsep_plugin.synth import audio as synth_audio
from pixelsep_plugin.synth import melodies, pictures, sounds
from pixelsep_plugin.synth.audio import NoteEvent, Performance
from pixelsep_plugin.synth.generate import CONDITIONS, SynthSettings, make_clip, read_sidecar
from pixelsep_plugin.synth.instruments import VOCABULARY, get_instruments

MUSIC_21 = (
    "accordion", "acoustic guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet", "congas", "drum", "electric bass",
    "erhu", "flute", "guzheng", "piano", "pipa", "saxophone", "trumpet", "tuba", "ukulele", "violin", "xylophone",
)  # fmt: skip


def test_vocabulary_is_music_21_and_three_more_each_in_three_styles_or_more():
    names = [i.name for i in VOCABULARY]
    assert set(MUSIC_21) <= set(names) and len(names) == 24 and {"horn", "voice", "maracas"} <= set(names)
    for instrument in VOCABULARY:
        styles = pictures.styles_for(instrument.name)
        assert len(styles) >= 3, (instrument.name, styles)
        assert sounds.families_for(instrument, sounds.TRAINING_SOUNDS), instrument.name
        for style in styles:
            picture = pictures.picture(instrument.name, style, (200, 30, 30))
            alpha = np.asarray(picture.getchannel("A"))
            assert alpha.max() == 255 and picture.width >= 20 and picture.height >= 20, (instrument.name, style)
    assert get_instruments(["long drum", "guitar"]) == get_instruments(["congas", "acoustic guitar"])
    with pytest.raises(ValueError, match="unknown instrument"):
        get_instruments(["theremin"])


def test_one_colour_styles_take_the_colour_they_are_given():
    for style in ("game-icons", "silhouette"):
        red = np.asarray(pictures.picture("violin", style, (255, 0, 0)).convert("RGBA")).reshape(-1, 4)
        opaque = red[red[:, 3] == 255, :3]
        assert opaque.size and np.all(opaque[:, 0] > 200) and np.all(opaque[:, 1:] < 60), style


def test_held_out_styles_and_sounds_stay_out_of_training():
    assert not set(pictures.HELD_OUT_STYLES) & set(pictures.TRAINING_STYLES)
    assert not set(sounds.HELD_OUT_SOUNDS + sounds.REAL_RECORDINGS) & set(sounds.TRAINING_SOUNDS)
    train = CONDITIONS["train"]
    assert set(train["styles"]) == set(pictures.TRAINING_STYLES) and set(train["sounds"]) == set(sounds.TRAINING_SOUNDS)
    for name in ("heldout-style", "heldout-sound", "real"):
        condition = CONDITIONS[name]
        held_out = set(condition["styles"]) - set(pictures.TRAINING_STYLES) or set(condition["sounds"]) - set(sounds.TRAINING_SOUNDS)
        assert held_out, name


def test_the_sampler_plays_recorded_notes_at_the_asked_pitch():
    cello = get_instruments(["cello"])[0]
    events = [NoteEvent(0.1, 50, 100, 0.8), NoteEvent(1.0, 57, 100, 0.8)]
    audio = sounds.render_sampler(Performance(cello, "test", 100.0, events), 2.0, np.random.default_rng(0))
    assert audio.shape == (2, 88200) and np.abs(audio).max() > 0.01
    path = f"{sounds.LMMS}/{sounds.LMMS_NOTES['cello'][0]}"
    for event in events:
        start = int((event.start + 0.05) * 44100)
        note = audio[:, start : start + 20000]
        semitones = event.pitch - sounds.sample_pitch(path)
        shifted = sounds._pitched(sounds.read_sample(path), semitones)
        ref = shifted[:, int(0.05 * 44100) : int(0.05 * 44100) + 20000]
        assert np.corrcoef(note[0], ref[0])[0, 1] > 0.95


def test_recorded_phrases_fill_the_clip():
    guitar = get_instruments(["acoustic guitar"])[0]
    audio, names = sounds.render_phrases(guitar, 12.0, np.random.default_rng(3))
    assert audio.shape == (2, 12 * 44100) and names.startswith("guit_")
    seconds = np.sqrt(np.mean(audio.reshape(2, 12, -1) ** 2, axis=(0, 2)))
    assert (seconds > 1e-3).mean() > 0.7  # sounding most of the time


def test_recording_chain_is_deterministic_and_keeps_the_length():
    rng_audio = np.random.default_rng(0).standard_normal((2, 44100)).astype(np.float32) * 0.1
    first, settings = synth_audio.recording_chain(rng_audio, 44100, np.random.default_rng(7), strength=4.0)
    second, _ = synth_audio.recording_chain(rng_audio, 44100, np.random.default_rng(7), strength=4.0)
    assert first.shape == rng_audio.shape and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, second)
    assert settings and not np.array_equal(first, rng_audio)


@pytest.mark.parametrize("condition", ["train", "heldout-style", "real"])
def test_conditions_make_clips(tmp_path, condition):
    settings = SynthSettings(**{**vars(TINY), **CONDITIONS[condition], "seconds": 4.0})
    sidecar = json.loads(make_clip(tmp_path, "clip", "duet", "test", 2_000_003, settings).read_text())
    for performer in sidecar["performers"]:
        assert performer["style"] in settings.styles and performer["sound"]["family"] in settings.sounds
        for (x0, y0, x1, y1), (x, y) in zip(performer["boxes"], performer["points"], strict=True):
            assert x0 <= x < x1 and y0 <= y < y1  # the click point lies on the picture, inside its box
        stem, _ = media.read_audio(tmp_path / performer["stem"])
        assert np.sqrt(np.mean(stem**2)) > 1e-3


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
