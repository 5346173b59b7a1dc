"""Effect chains with real pedalboard plugins: streamed block by block they give what the whole stem
processed at once gives, latency and all; tails are cut or ring; parameters are checked in one line
before any audio; recipes, Pedalboard objects and VST3 states go back and forth; `pixelsep effects`."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pedalboard
import pytest

from host_bridge.cli.effects import parse_effect
from host_bridge.cli.main import main
from host_bridge.pedalboard_mix import StemMixer, boards_from_recipe, effects_from_board
from pixelsep_plugin import effects, media
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.api import render_recipe, separation_for
from pixelsep_plugin.effects import plugins
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Box, Point, Source

RATE = 44100
BLOCK_SIZES = (1, 7, 777, 4096, 100_000)
VST3_FOLDER = Path("/usr/lib/vst3")  # Debian's zam-plugins (the Makefile's system packages)
COMPRESSOR_VST3 = VST3_FOLDER / "ZamCompX2.vst3"
LIMITER_VST3 = VST3_FOLDER / "ZaMaximX2.vst3"  # a lookahead limiter that reports 480 samples of latency


def tone(seconds: float, sample_rate: int = RATE, num_channels: int = 2, seed: int = 0) -> np.ndarray:
    """A test stem, float32 (channels, n): a tremolo sine, a distorted sine and some noise, faded in and out."""
    n = int(seconds * sample_rate) + 17
    t = np.arange(n) / sample_rate
    noise = np.random.default_rng(seed).standard_normal(n)
    rows = [0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 1.3 * t) + 0.05 * noise,
            0.4 * np.sin(2 * np.pi * 220 * t) ** 3 + 0.02 * noise]  # fmt: skip
    fade = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.01 * sample_rate))
    return (np.stack(rows[:num_channels]) * fade).astype(np.float32)


def stream(stage, stem: np.ndarray, block_size: int) -> np.ndarray:
    pieces = [stage.process(stem[:, s : s + block_size]) for s in range(0, stem.shape[1], block_size)]
    return np.concatenate([*pieces, stage.flush()], axis=1)


# Parameters that make each built-in plugin do something audible (Convolution gets an impulse response file)
PARAMETERS = {
    "Bitcrush": {"bit_depth": 6}, "BrickwallLimiter": {"ceiling_db": -6.0}, "Chorus": {"depth": 0.5, "feedback": 0.3},
    "Clipping": {"threshold_db": -10}, "Compressor": {"threshold_db": -20, "ratio": 4, "attack_ms": 2},
    "Convolution": {"mix": 0.5}, "Delay": {"delay_seconds": 0.1, "feedback": 0.5}, "Distortion": {"drive_db": 20},
    "GSMFullRateCompressor": {}, "Gain": {"gain_db": -3},
    "HighShelfFilter": {"cutoff_frequency_hz": 2000, "gain_db": 6}, "HighpassFilter": {"cutoff_frequency_hz": 500},
    "Invert": {},
    "LadderFilter": {"mode": "LPF24", "cutoff_hz": 1000, "resonance": 0.5, "drive": 2},
    "Limiter": {"threshold_db": -12}, "LowShelfFilter": {"cutoff_frequency_hz": 200, "gain_db": -6},
    "LowpassFilter": {"cutoff_frequency_hz": 1000}, "MP3Compressor": {"vbr_quality": 4},
    "NoiseGate": {"threshold_db": -20}, "PeakFilter": {"cutoff_frequency_hz": 1000, "gain_db": 6, "q": 2},
    "Phaser": {"depth": 0.8}, "PitchShift": {"semitones": 3}, "Resample": {"target_sample_rate": 8000},
    "Reverb": {"room_size": 0.8, "wet_level": 0.4},
}  # fmt: skip


@pytest.fixture(scope="module")
def impulse_response(tmp_path_factory) -> Path:
    from pedalboard.io import AudioFile

    path = tmp_path_factory.mktemp("ir") / "room.wav"
    n = RATE // 4
    response = np.random.default_rng(3).standard_normal((2, n)) * np.exp(-np.arange(n) / (0.03 * RATE))
    with AudioFile(str(path), "w", RATE, 2) as file:
        file.write(response.astype(np.float32))
    return path


def effect_of(name: str, impulse_response: Path) -> rcp.Effect:
    parameters = dict(PARAMETERS[name])
    if name == "Convolution":
        parameters["impulse_response_filename"] = str(impulse_response)
    return rcp.Effect(name, parameters)


# ---------------------------------------------------------------------------------------------------
# The plugins and their parameters


def test_every_pedalboard_plugin_is_an_effect_or_named_as_not_one():
    classes = {n for n in dir(pedalboard) if not n.startswith("_") and isinstance(getattr(pedalboard, n), type)
               and issubclass(getattr(pedalboard, n), pedalboard.Plugin)}  # fmt: skip
    assert classes - set(plugins.PLUGINS) - set(plugins.NOT_EFFECTS) == set()
    assert set(plugins.supported_plugins()) == set(PARAMETERS)
    for name, specs in plugins.PLUGINS.items():  # the table names the class's own parameters
        properties = {k for k, v in vars(getattr(pedalboard, name)).items() if isinstance(v, property)}
        assert set(specs) <= properties, name


@pytest.mark.parametrize(
    "plugin, parameter, outside, message",
    [
        ("Reverb", "room_size", 1.5, "Reverb: room_size is 1.5, outside [0, 1]"),
        ("Delay", "delay_seconds", 31, "Delay: delay_seconds is 31, outside [0, 30]"),
        ("PitchShift", "semitones", -73, "PitchShift: semitones is -73, outside [-72, 72]"),
        ("Compressor", "ratio", 0.5, "Compressor: ratio is 0.5, outside [1, inf)"),
        ("Chorus", "rate_hz", 101, "Chorus: rate_hz is 101, outside [0, 100)"),
        ("Bitcrush", "bit_depth", 33, "Bitcrush: bit_depth is 33, outside [0, 32]"),
        ("LadderFilter", "resonance", 1.2, "LadderFilter: resonance is 1.2, outside [0, 1]"),
        ("MP3Compressor", "vbr_quality", 11, "MP3Compressor: vbr_quality is 11, outside [0, 10]"),
        ("BrickwallLimiter", "lookahead_ms", 0, "BrickwallLimiter: lookahead_ms is 0, outside (0, 100]"),
    ],
)
def test_ranges_pedalboard_enforces_are_refused_in_one_line(plugin, parameter, outside, message):
    with pytest.raises((ValueError, RuntimeError, TypeError)):  # pedalboard's own check
        getattr(pedalboard, plugin)(**{parameter: outside})
    with pytest.raises(InputError) as caught:
        plugins.make_builtin(plugin, {parameter: outside}, RATE)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "plugin, parameters, message",
    [
        ("Chorus", {"depth": 5.0}, "Chorus: depth is 5, outside [0, 1]"),
        ("Phaser", {"mix": -1.0}, "Phaser: mix is -1, outside [0, 1]"),
        ("Phaser", {"centre_frequency_hz": 30000}, "Phaser: centre_frequency_hz is 30000, outside (0, 22050)"),
        ("NoiseGate", {"ratio": 0.2}, "NoiseGate: ratio is 0.2, outside [1, inf)"),
        (
            "HighpassFilter",
            {"cutoff_frequency_hz": 30000},
            "HighpassFilter: cutoff_frequency_hz is 30000, outside (0, 22050]",
        ),
    ],
)
def test_ranges_only_juce_asserts_are_refused_too(plugin, parameters, message):
    getattr(pedalboard, plugin)(**parameters)  # pedalboard's release build takes them
    with pytest.raises(InputError) as caught:
        plugins.make_builtin(plugin, parameters, RATE)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "effect, message",
    [
        (rcp.Effect("Reverb", {"roomsize": 0.5}), "Reverb: unknown parameter 'roomsize'; it takes room_size, damping"),
        (rcp.Effect("Gain", {"gain_db": "loud"}), "Gain: gain_db must be a number in a finite number, not 'loud'"),
        (rcp.Effect("Gain", {"gain_db": math.inf}), "Gain: gain_db must be a number"),
        (rcp.Effect("LadderFilter", {"mode": "LPF48"}), "LadderFilter: mode is 'LPF48', not one of LPF12, HPF12"),
        (rcp.Effect("BrickwallLimiter", {"true_peak": 1}), "BrickwallLimiter: true_peak must be true or false"),
        (rcp.Effect("Reverb", {}, state="AAAA"), "Reverb: a built-in plugin has no saved state"),
        (
            rcp.Effect("Convolution", {"impulse_response_filename": "nowhere.wav"}),
            "Convolution: impulse response .*nowhere.wav not found",
        ),
        (rcp.Effect("Mix", {}), "Mix is not an effect of a chain"),
        (rcp.Effect("/no/such/Plugin.vst3", {}), "plugin file /no/such/Plugin.vst3 not found"),
    ],
)
def test_bad_effects_are_one_line_errors(effect, message, tmp_path):
    context = effects.StemContext("red", RATE, 2, RATE, lambda: iter(()), base_folder=tmp_path)
    with pytest.raises(InputError, match=message) as caught:
        effects.check_effects([effect], context)
    assert "\n" not in str(caught.value)


def test_without_pedalboard_an_effect_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pedalboard", None)  # import pedalboard now fails
    monkeypatch.delitem(sys.modules, "pixelsep_plugin.effects.plugins")
    for name in ("Reverb", "/usr/lib/vst3/ZamCompX2.vst3"):
        with pytest.raises(InputError, match=r"needs pedalboard: pip install 'pixelsep\[effects\]'"):
            effects.builder_for(name)


# ---------------------------------------------------------------------------------------------------
# Streaming equals the whole stem at once


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_plugin_streams_exactly_as_the_whole_stem(name, impulse_response):
    stem = tone(0.5)
    effect = effect_of(name, impulse_response)
    whole = pedalboard.Pedalboard([plugins.plugin_from_effect(effect, RATE)])(stem, RATE)
    for block_size in BLOCK_SIZES:
        stage = plugins.pedalboard_stage(plugins.plugin_from_effect(effect, RATE), RATE)
        out = stream(stage, stem, block_size)
        assert out.shape[1] >= stem.shape[1]
        np.testing.assert_allclose(out[:, : stem.shape[1]], whole, atol=1e-6, err_msg=f"{name}, blocks of {block_size}")
        assert stage.held == (not plugins.streams_in_blocks(name))


@pytest.mark.parametrize("sample_rate, num_channels", [(48000, 1), (22050, 2)])
def test_other_rates_and_mono_stream_exactly(sample_rate, num_channels):
    stem = tone(0.6, sample_rate, num_channels, seed=1)
    sizes = np.random.default_rng(2).integers(1, 9000, size=400)
    for parameters in ({"Reverb": {}}, {"Delay": {"delay_seconds": 0.05}}, {"PitchShift": {"semitones": -4}}):
        ((name, values),) = parameters.items()
        whole = pedalboard.Pedalboard([plugins.make_builtin(name, values, sample_rate)])(stem, sample_rate)
        stage = plugins.pedalboard_stage(plugins.make_builtin(name, values, sample_rate), sample_rate, num_channels)
        pieces, start = [], 0
        for size in sizes:  # irregular block sizes
            pieces.append(stage.process(stem[:, start : start + size]))
            start += size
            if start >= stem.shape[1]:
                break
        out = np.concatenate([*pieces, stage.flush()], axis=1)
        np.testing.assert_allclose(out[:, : stem.shape[1]], whole, atol=1e-6, err_msg=name)


def test_a_board_of_several_plugins_streams_as_the_board_does():
    stem = tone(1.2)

    def board():
        return pedalboard.Pedalboard(
            [pedalboard.Compressor(-20, 4), pedalboard.HighpassFilter(80), pedalboard.Chorus(),
             pedalboard.Delay(0.2, 0.3, 0.3), pedalboard.Limiter(-3), pedalboard.Reverb()]
        )  # fmt: skip

    whole = board()(stem, RATE)
    for block_size in (1, 777, 100_000):
        out = stream(plugins.pedalboard_stage(board(), RATE), stem, block_size)
        np.testing.assert_allclose(out[:, : stem.shape[1]], whole, atol=1e-6)


def test_latency_is_removed_pitch_shift_at_0_semitones_is_the_stem_itself():
    stem = tone(1.5)
    for block_size in (777, 100_000):
        out = stream(plugins.pedalboard_stage(pedalboard.PitchShift(semitones=0), RATE), stem, block_size)
        np.testing.assert_allclose(out[:, : stem.shape[1]], stem, atol=2e-5)
    # a lookahead limiter that does not limit: its 10 ms lookahead is gone, the stem comes back as it was
    quiet = 0.5 * stem
    board = pedalboard.Pedalboard([pedalboard.BrickwallLimiter(ceiling_db=-0.1, lookahead_ms=10.0)])
    out = stream(plugins.pedalboard_stage(board, RATE), quiet, 777)
    np.testing.assert_array_equal(out[:, : stem.shape[1]], quiet)


def test_pedalboard_itself_hands_back_silence_when_pitch_shift_is_streamed():
    """Why PitchShift is held: with reset=False pedalboard 0.9.26 clears its priming delay line at every call."""
    if plugins.streams_in_blocks("PitchShift"):
        pytest.skip("this pedalboard streams PitchShift; the stage streams it too")
    board = pedalboard.Pedalboard([pedalboard.PitchShift(0)])
    stem = tone(3.0)
    out = [board(stem[:, s : s + 8192], RATE, reset=False) for s in range(0, stem.shape[1], 8192)]
    assert sum(o.shape[1] for o in out) > RATE and max(float(np.abs(o).max(initial=0)) for o in out) == 0.0
    assert plugins.pedalboard_stage(pedalboard.PitchShift(0), RATE).held


def test_tails_ring_on_until_silent_or_are_cut_by_the_chain():
    stem = tone(0.5)
    n = stem.shape[1]
    rung = stream(plugins.pedalboard_stage(pedalboard.Delay(0.25, 0.5, 0.5), RATE), stem, 4096)
    tail = rung.shape[1] - n
    assert 2 * RATE < tail < 5 * RATE  # echoes every 0.25 s, halving: about 17 of them above -100 dBFS
    padded = pedalboard.Pedalboard([pedalboard.Delay(0.25, 0.5, 0.5)])(np.pad(stem, ((0, 0), (0, tail + RATE))), RATE)
    np.testing.assert_allclose(rung, padded[:, : n + tail], atol=1e-6)
    assert np.abs(padded[:, n + tail :]).max() < plugins.SILENCE  # it stops where the tail has rung out
    endless = pedalboard.Delay(0.25, feedback=1.0, mix=0.5)
    limited = stream(plugins.pedalboard_stage(endless, RATE, 2, max_tail_seconds=1.5), stem, 4096)
    assert limited.shape[1] == n + int(1.5 * RATE)  # echoes that never die ring for max_tail_seconds
    chain = effects.Chain([plugins.pedalboard_stage(pedalboard.Delay(0.25, 0.5, 0.5), RATE)], n, RATE, tail="cut")
    cut = np.concatenate([chain.process(stem[:, :1000]), chain.process(stem[:, 1000:]), chain.finish()], axis=1)
    np.testing.assert_array_equal(cut, rung[:, :n])


# ---------------------------------------------------------------------------------------------------
# VST3 plugins by path


def test_a_vst3_plugin_loads_by_path_and_its_state_round_trips(tmp_path):
    plugin = plugins.load_plugin(COMPRESSOR_VST3, {"threshold_db": -30.0, "ratio": 8.0, "attack_ms": 2.0})
    effect = plugins.effect_from_plugin(plugin)
    assert effect.plugin == str(COMPRESSOR_VST3) and effect.parameters == {} and len(effect.state) > 100
    text = json.dumps({"plugin": effect.plugin, "parameters": effect.parameters, "state": effect.state})
    restored = plugins.plugin_from_effect(rcp.Effect(**json.loads(text)), RATE)
    assert (float(restored.threshold_db), float(restored.ratio), float(restored.attack_ms)) == (-30.0, 8.0, 2.0)
    stem = tone(1.0)
    whole = pedalboard.Pedalboard([plugins.plugin_from_effect(effect, RATE)])(stem, RATE)
    assert np.abs(whole - stem).max() > 0.05  # it compresses
    out = stream(plugins.pedalboard_stage(restored, RATE), stem, 777)
    np.testing.assert_array_equal(out[:, : stem.shape[1]], whole)
    with pytest.raises(InputError, match=r"ZamCompX2.vst3: ratio is 50, outside \[1, 20\]"):
        plugins.load_plugin(COMPRESSOR_VST3, {"ratio": 50})
    with pytest.raises(InputError, match="ZamCompX2.vst3: unknown parameter 'ratios'; it has .*ratio"):
        plugins.load_plugin(COMPRESSOR_VST3, {"ratios": 5})
    with pytest.raises(InputError, match="does not support 2-channel output"):
        plugins.pedalboard_stage(plugins.load_plugin(VST3_FOLDER / "ZamComp.vst3"), RATE, 2)  # a mono plugin


def test_a_vst3_plugins_latency_is_removed():
    plugin = plugins.load_plugin(LIMITER_VST3)
    assert plugin.reported_latency_samples == 480
    stem = 0.5 * tone(1.0)  # below its threshold: nothing to limit
    for block_size in (1, 4096):
        out = stream(plugins.pedalboard_stage(plugins.load_plugin(LIMITER_VST3), RATE), stem, block_size)
        np.testing.assert_array_equal(out[:, : stem.shape[1]], stem)


# ---------------------------------------------------------------------------------------------------
# The mixer, the recipe and the render


@pytest.fixture(scope="module")
def edit(separator, clip_factory):
    clip = clip_factory("pedalboard.mp4", seconds=2.0)
    analysis, _ = separator.analyze(clip)
    sources = [Source("red", (Point(30, 60, 1.0),)), Source("blue", (Box(120, 30, 160, 90, 0.5),))]
    recipe = rcp.new_recipe(rcp.clip_ref(clip), separator.package.model_id, separator.package.checksum, sources)
    stems, residual = separation_for(separator, analysis, recipe).render()
    return separator, analysis, recipe, {"red": stems[0], "blue": stems[1], "residual": residual}


def mix_boards():
    """The brief's plugins over two stems and the residual: a fresh set each call."""
    return {
        "red": pedalboard.Pedalboard([pedalboard.Compressor(-24, 4), pedalboard.PitchShift(2), pedalboard.Reverb(0.6)]),
        "blue": pedalboard.Pedalboard(
            [pedalboard.HighpassFilter(300), pedalboard.Chorus(), pedalboard.Delay(0.15, 0.4, 0.4)]
        ),
        "residual": pedalboard.Pedalboard([pedalboard.Gain(-6), pedalboard.Limiter(-10)]),
    }


def test_the_block_wise_mix_equals_each_whole_stem_through_its_board(edit):
    separator, analysis, recipe, stems = edit
    recipe = rcp.apply_gains(recipe, [("red", 3.0), ("blue", -6.0), ("residual", -3.0)])
    mixer = StemMixer(separation_for(separator, analysis, recipe), mix_boards(), recipe)
    by_hand = {name: board(stems[name], RATE) for name, board in mix_boards().items()}
    gains = {"red": 10 ** (3 / 20), "blue": 10 ** (-6 / 20), "residual": 10 ** (-3 / 20)}
    expected = sum(np.float32(gains[name]) * by_hand[name] for name in by_hand)
    for block_size in (777, 100_000):
        blocks = list(mixer.iter_blocks(block_size))
        assert [b.sample_start for b in blocks] == list(range(0, stems["red"].shape[1], block_size))
        remix = np.concatenate([b.remix for b in blocks], axis=1)
        np.testing.assert_allclose(remix, expected, atol=2e-5)
        for name in by_hand:
            np.testing.assert_allclose(
                np.concatenate([b.stems[name] for b in blocks], axis=1), by_hand[name], atol=1e-6
            )
    np.testing.assert_array_equal(mixer(), remix)


def test_without_boards_the_mix_is_the_clips_own_sound(edit):
    separator, analysis, recipe, _ = edit
    remix = StemMixer(separation_for(separator, analysis, recipe))()
    np.testing.assert_array_equal(remix, analysis.audio)


def test_the_mixers_tails_ring_past_the_clip_or_are_cut(edit):
    separator, analysis, recipe, stems = edit
    n = stems["red"].shape[1]
    separation = separation_for(separator, analysis, recipe)
    cut = StemMixer(separation, {"blue": pedalboard.Delay(0.3, 0.6, 0.5)}).render()
    assert cut.remix.shape == (2, n)
    rung = StemMixer(separation, {"blue": pedalboard.Delay(0.3, 0.6, 0.5)}, tail="ring", tail_seconds=2.0).render()
    assert rung.remix.shape == (2, n + 2 * RATE)  # the echoes go on for longer than 2 s: held to tail_seconds
    np.testing.assert_array_equal(rung.remix[:, :n], cut.remix)
    echoes = pedalboard.Delay(0.3, 0.6, 0.5)(np.pad(stems["blue"], ((0, 0), (0, 2 * RATE))), RATE)
    np.testing.assert_allclose(rung.stems["blue"], echoes, atol=1e-6)
    np.testing.assert_allclose(rung.remix[:, n:], echoes[:, n:], atol=1e-6)  # past the clip only the tail plays


def test_mixer_arguments_are_checked_before_any_audio(edit, monkeypatch):
    separator, analysis, recipe, _ = edit
    separation = separation_for(separator, analysis, recipe)
    monkeypatch.setattr(type(separation), "iter_blocks", lambda *a, **k: pytest.fail("audio was rendered"))
    with pytest.raises(InputError, match="a board for 'green', which is not a stem: name one of red, blue, residual"):
        StemMixer(separation, {"green": pedalboard.Reverb()})
    shared = pedalboard.Reverb()
    with pytest.raises(InputError, match="share a plugin: give every stem its own board"):
        StemMixer(separation, {"red": pedalboard.Pedalboard([shared]), "blue": pedalboard.Pedalboard([shared])})
    with pytest.raises(InputError, match="does not support 2-channel output"):
        StemMixer(separation, {"red": plugins.load_plugin(VST3_FOLDER / "ZamComp.vst3")})
    bad = rcp.apply_gains(recipe, [])
    bad.source("red").effects = [rcp.Effect("Reverb", {"room_size": 2})]
    with pytest.raises(InputError, match=r"^Reverb: room_size is 2, outside \[0, 1\]$"):
        StemMixer(separation, recipe=bad)


def test_boards_and_recipes_go_back_and_forth(edit, tmp_path):
    separator, analysis, recipe, stems = edit
    recipe = rcp.apply_gains(recipe, [])
    board = pedalboard.Pedalboard([pedalboard.LadderFilter(pedalboard.LadderFilter.Mode.HPF12, 300, 0.2, 1.5),
                                   pedalboard.Chain([pedalboard.Reverb(wet_level=0.33), pedalboard.Gain(-2.5)]),
                                   plugins.load_plugin(COMPRESSOR_VST3, {"threshold_db": -20.0})])  # fmt: skip
    chain = effects_from_board(board)
    assert [e.plugin for e in chain] == ["LadderFilter", "Reverb", "Gain", str(COMPRESSOR_VST3)]
    assert chain[0].parameters == {"mode": "HPF12", "cutoff_hz": 300, "resonance": 0.2, "drive": 1.5}
    assert chain[1].parameters["wet_level"] == 0.33 and chain[2].parameters == {"gain_db": -2.5}
    recipe.source("red").effects = chain
    path = rcp.save(recipe, tmp_path / "fx.json")
    boards = boards_from_recipe(rcp.load(path))
    assert list(boards) == ["red"]
    np.testing.assert_array_equal(boards["red"](stems["red"], RATE), board(stems["red"], RATE))
    with pytest.raises(InputError, match="cannot hold a pedalboard Mix"):
        effects_from_board(pedalboard.Pedalboard([pedalboard.Mix([pedalboard.Gain(), pedalboard.Invert()])]))
    with pytest.raises(InputError, match="was not loaded with pixelsep's load_plugin"):
        effects_from_board(pedalboard.load_plugin(str(COMPRESSOR_VST3)))
    swap = rcp.apply_gains(recipe, [])
    swap.source("blue").effects = [rcp.Effect("pixelsep.Loudness", {})]
    with pytest.raises(InputError, match="pixelsep.Loudness on blue is one of pixelsep's own processors"):
        boards_from_recipe(swap)


def test_a_recipe_chain_renders_and_its_fx_stem_is_the_stem_through_its_plugins(edit, tmp_path):
    separator, analysis, recipe, _ = edit
    recipe = rcp.apply_gains(recipe, [("blue", -3.0)])
    recipe.source("blue").effects = [rcp.Effect("Compressor", {"threshold_db": -24, "ratio": 4}),
                                     rcp.Effect("PitchShift", {"semitones": -3}),
                                     rcp.Effect("Reverb", {"room_size": 0.5, "wet_level": 0.3})]  # fmt: skip
    recipe.residual.effects = [rcp.Effect(str(LIMITER_VST3), {"threshold_db": -12.0})]
    result = render_recipe(separator, analysis, recipe, tmp_path)
    read = {name: media.read_audio(path)[0] for name, path in (*result.stems.items(), ("residual", result.residual))}
    blue = pedalboard.Pedalboard(
        [pedalboard.Compressor(-24, 4), pedalboard.PitchShift(-3), pedalboard.Reverb(0.5, wet_level=0.3)]
    )
    np.testing.assert_allclose(media.read_audio(result.processed["blue"])[0], blue(read["blue"], RATE), atol=1e-6)
    limiter = plugins.load_plugin(LIMITER_VST3, {"threshold_db": -12.0})
    residual = pedalboard.Pedalboard([limiter])(read["residual"], RATE)
    np.testing.assert_allclose(media.read_audio(result.processed["residual"])[0], residual, atol=1e-6)
    expected = read["red"] + np.float32(10 ** (-3 / 20)) * blue(read["blue"], RATE) + residual
    np.testing.assert_allclose(media.read_audio(result.remix)[0], expected, atol=2e-5)


def test_a_bad_parameter_stops_a_render_before_any_file(edit, tmp_path):
    separator, analysis, recipe, _ = edit
    recipe = rcp.apply_gains(recipe, [])
    recipe.source("red").effects = [rcp.Effect("Gain", {"gain_db": 3}), rcp.Effect("Delay", {"delay_seconds": 40})]
    with pytest.raises(InputError, match=r"^Delay: delay_seconds is 40, outside \[0, 30\]$"):
        render_recipe(separator, analysis, recipe, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------
# pixelsep effects


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_effect_text_is_read_as_literals_only():
    reverb = rcp.Effect("Reverb", {"room_size": 0.5, "wet_level": 0.3})
    assert parse_effect("Reverb(room_size=0.5, wet_level=0.3)") == reverb
    assert parse_effect(" Invert ") == rcp.Effect("Invert", {})
    assert parse_effect("LadderFilter(mode='HPF24', drive=-1e0)").parameters == {"mode": "HPF24", "drive": -1.0}
    assert parse_effect("pixelsep.Loudness(target_lufs=-16)") == rcp.Effect("pixelsep.Loudness", {"target_lufs": -16})
    for text, message in [
        ("__import__('os').system('true')", "cannot read effect"),
        ("Reverb(room_size=open('x'))", "cannot read room_size"),
        ("Reverb(0.5)", "give its parameters by name"),
        ("Reverb(**{'room_size': 1})", "give its parameters by name"),
        ("Reverb(room_size=[1])", "cannot read room_size"),
        ("Reverb(room_size=", "cannot read effect"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_effect(text)


@pytest.fixture
def recipe_file(edit, tmp_path):
    separator, _, recipe, _ = edit
    path = rcp.save(rcp.apply_gains(recipe, []), tmp_path / "duo.json")
    return path, separator


def test_the_effects_command_adds_lists_clears_and_renders(recipe_file, small_model, capsys):
    path, separator = recipe_file
    code, out, err = run(capsys, "effects", path, "--source", "red", "--add", "Reverb(room_size=0.5, wet_level=0.3)",
                         "--add", "Compressor(threshold_db=-20, ratio=4)")  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0] == (
        "red's effects: Reverb(room_size=0.5, wet_level=0.3), Compressor(threshold_db=-20, ratio=4)"
    )
    added = [rcp.Effect("Reverb", {"room_size": 0.5, "wet_level": 0.3}),
             rcp.Effect("Compressor", {"threshold_db": -20, "ratio": 4})]  # fmt: skip
    assert rcp.load(path).source("red").effects == added
    code, out, err = run(capsys, "effects", path, "--source", "residual", "--vst3", COMPRESSOR_VST3,
                         "--param", "ratio=4", "--param", "threshold_db=-18", "--list")  # fmt: skip
    assert code == 0, err
    assert rcp.load(path).residual.effects == [rcp.Effect(str(COMPRESSOR_VST3), {"ratio": 4, "threshold_db": -18})]
    assert out.splitlines()[2:] == [
        "red:",
        "  1. Reverb(room_size=0.5, wet_level=0.3)",
        "  2. Compressor(threshold_db=-20, ratio=4)",
        "blue: no effects",
        "residual:",
        f"  1. --vst3 {COMPRESSOR_VST3} --param ratio=4 --param threshold_db=-18",
    ]
    code, out, err = run(capsys, "render", path, "--model", small_model, "--cache-dir", separator.cache_root, "-q")
    assert code == 0, err
    assert "from cache" in out
    stems, prefix = path.parent / "stems", rcp.load(path).prefix
    red = media.read_audio(stems / f"{prefix}.red.wav")[0]
    board = pedalboard.Pedalboard([pedalboard.Reverb(room_size=0.5, wet_level=0.3), pedalboard.Compressor(-20, 4)])
    np.testing.assert_allclose(media.read_audio(stems / f"{prefix}.red.fx.wav")[0], board(red, RATE), atol=1e-6)
    assert (stems / f"{prefix}.residual.fx.wav").exists()
    code, out, err = run(capsys, "effects", path, "--source", "red", "--clear")
    assert code == 0 and rcp.load(path).source("red").effects == [] and out.startswith("red's effects: none")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "red", "--add", "Reverb(room_size=1.5)"], "Reverb: room_size is 1.5, outside [0, 1]"),
        (["--source", "red", "--add", "Gain", "--add", "Nothing(x=1)"], "unknown effect 'Nothing': name a pedalboard"),
        (["--source", "green", "--add", "Gain"], "no source named 'green': the sources are red, blue, residual"),
        (["--add", "Gain"], "say whose chain to edit: --source NAME (or --source residual)"),
        (["--source", "red", "--vst3", "/nowhere/X.vst3"], "plugin file /nowhere/X.vst3 not found"),
        (
            ["--source", "red", "--vst3", COMPRESSOR_VST3, "--param", "ratio=99"],
            "ZamCompX2.vst3: ratio is 99, outside [1, 20]",
        ),
        (["--source", "red", "--add", "os.system(command='true')"], "unknown effect 'os.system'"),
        (["--source", "red", "--add", "Reverb(room_size=__import__('os'))"], "cannot read room_size in"),
        ([], "nothing to do: give --add, --vst3, --clear or --list"),
    ],
)
def test_the_effects_command_refuses_in_one_line_and_leaves_the_recipe(recipe_file, capsys, args, message):
    path, _ = recipe_file
    before = path.read_bytes()
    code, out, err = run(capsys, "effects", path, *args)
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert path.read_bytes() == before


def test_a_param_needs_its_vst3(recipe_file, capsys):
    path, _ = recipe_file
    with pytest.raises(SystemExit) as caught:
        main(["effects", str(path), "--source", "red", "--param", "ratio=4"])
    assert caught.value.code == 2
    assert "--param sets a parameter of the --vst3 plugin given before it" in capsys.readouterr().err
