"""Cleanup processors (pixelsep.Loudness, pixelsep.HumRemoval, pixelsep.NoiseReduction) and the cleanup preset:
known answers on signals made here, streaming that does not depend on block sizes, one-line parameter
errors, and a preset recipe rendered end to end."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from pixelsep_plugin import effects, media
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.api import render_recipe
from pixelsep_plugin.effects import StemContext, build_chain, builder_for, cleanup
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Box, Point, Source

REPO = Path(__file__).resolve().parents[1]
RATE = 44100


def _context(stem: np.ndarray, sample_rate: int = RATE, name: str = "stem", block: int = 10_000) -> StemContext:
    def blocks():
        for start in range(0, stem.shape[1], block):
            yield stem[:, start : start + block]

    return StemContext(name, sample_rate, stem.shape[0], stem.shape[1], blocks)


def _stage(plugin: str, stem: np.ndarray, sample_rate: int = RATE, **parameters):
    return builder_for(plugin)(rcp.Effect(plugin, parameters), _context(stem, sample_rate))


def _run(stage, stem: np.ndarray, block: int) -> np.ndarray:
    """The stage's whole output for ``stem`` fed in blocks of ``block`` samples."""
    pieces = [stage.process(stem[:, start : start + block]) for start in range(0, stem.shape[1], block)]
    pieces.append(stage.flush())
    out = np.concatenate(pieces, axis=1)
    assert out.shape == stem.shape and out.dtype == np.float32
    return out


def _amplitude(signal: np.ndarray, frequency: float, start: int, stop: int, sample_rate: int = RATE) -> float:
    """Amplitude of the sinusoid at ``frequency`` in the channel mean of ``signal[:, start:stop]``."""
    t = np.arange(start, stop) / sample_rate
    return 2 * abs(np.mean(signal[:, start:stop].mean(axis=0) * np.exp(-2j * np.pi * frequency * t)))


def _music(seconds: float, sample_rate: int = RATE, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Notes with envelopes over a little noise: float32 (channels, n)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    notes = np.zeros(n)
    for start in np.arange(0.0, seconds, 0.5):
        f = 220 * 2 ** (rng.integers(0, 12) / 12)
        on = (t >= start) & (t < start + 0.45)
        notes += on * np.sin(2 * np.pi * f * t) * np.exp(-3 * np.clip(t - start, 0, None))
    return np.stack([0.3 * notes + 0.01 * rng.standard_normal(n) for _ in range(channels)]).astype(np.float32)


def _hum(mains: float, seconds: float, harmonics: int = 5, level: float = 0.05) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(level / k * np.sin(2 * np.pi * k * mains * t + k) for k in range(1, harmonics + 1))


def _loudness(stem: np.ndarray, sample_rate: int = RATE) -> float:
    return pyloudnorm.Meter(sample_rate).integrated_loudness(stem.T.astype(np.float64))


# ---------------------------------------------------------------------------------------------------
# Loudness


@pytest.mark.parametrize("sample_rate, channels, seconds", [(44100, 2, 33.3), (48000, 1, 7.05), (11025, 2, 3.3)])
def test_the_streamed_meter_reads_as_pyloudnorm_on_the_whole_stem(sample_rate, channels, seconds):
    stem = _music(seconds, sample_rate, channels)
    stem[:, : stem.shape[1] // 4] *= 0.01  # a quiet start for the gates to work on
    blocks = (stem[:, i : i + 7777] for i in range(0, stem.shape[1], 7777))
    assert cleanup.integrated_loudness(blocks, sample_rate) == pytest.approx(_loudness(stem, sample_rate), abs=0.01)


@pytest.mark.parametrize("target", [-23.0, -16.0])
def test_loudness_lands_on_target(target):
    stem = _music(6.0)
    out = _run(_stage("pixelsep.Loudness", stem, target_lufs=target), stem, 4099)
    assert abs(_loudness(out) - target) < 0.5
    gain = np.sum(out * stem) / np.sum(stem * stem)
    np.testing.assert_allclose(out, gain * stem, atol=1e-6)  # one constant gain


def test_loudness_after_hum_and_noise_removal_lands_on_target():
    """Loudness measures the stem as the cleanup processors in front of it leave it."""
    stem = _music(8.0) + _hum(50, 8.0, level=0.1).astype(np.float32)
    stem += np.random.default_rng(3).normal(0, 0.03, stem.shape).astype(np.float32)
    chain_effects = cleanup.cleanup_chain(-20.0)
    chain = build_chain(chain_effects, _context(stem))
    out = np.concatenate(
        [chain.process(stem[:, i : i + 3001]) for i in range(0, stem.shape[1], 3001)] + [chain.finish()], axis=1
    )
    assert out.shape == stem.shape
    assert abs(_loudness(out) - (-20.0)) < 0.5


def test_silent_and_short_stems_keep_their_level_and_say_so():
    for stem, why in [(np.zeros((2, RATE), np.float32), "silent"), (_music(0.3), "shorter than one 400 ms block")]:
        with pytest.warns(cleanup.CleanupWarning, match=why):
            out = _run(_stage("pixelsep.Loudness", stem), stem, 1000)
        np.testing.assert_array_equal(out, stem)


def test_a_boost_is_held_to_max_gain():
    stem = 0.01 * _music(3.0)
    with pytest.warns(cleanup.CleanupWarning, match="held to \\+6 dB"):
        out = _run(_stage("pixelsep.Loudness", stem, max_gain_db=6.0), stem, 5000)
    assert _loudness(out) - _loudness(stem) == pytest.approx(6.0, abs=0.01)


# ---------------------------------------------------------------------------------------------------
# Hum


@pytest.mark.parametrize("mains, mains_hz", [(50, "auto"), (60, "auto"), (50, 50), (60, 60)])
def test_hum_is_found_and_notched_while_a_tone_elsewhere_is_kept(mains, mains_hz):
    seconds = 6.0
    t = np.arange(int(seconds * RATE)) / RATE
    noise = np.random.default_rng(1).normal(0, 0.01, (2, t.size))
    stem = (0.3 * np.sin(2 * np.pi * 440 * t) + _hum(mains, seconds) + noise).astype(np.float32)
    stage = _stage("pixelsep.HumRemoval", stem, mains_hz=mains_hz)
    out = _run(stage, stem, 4321)
    if mains_hz == "auto":
        assert stage.shared["estimate"].mains_hz == mains
    settled, end = RATE, stem.shape[1]  # the notches ring in over the first 0.1 s or so
    for k in range(1, 6):
        kept = _amplitude(out, k * mains, settled, end) / _amplitude(stem, k * mains, settled, end)
        assert 20 * np.log10(kept) < -20, f"{k * mains} Hz"
    tone = _amplitude(out, 440, settled, end) / _amplitude(stem, 440, settled, end)
    assert abs(20 * np.log10(tone)) < 1


def test_without_hum_the_stem_passes_unchanged():
    stem = _music(4.0)
    with pytest.warns(cleanup.CleanupWarning, match="no mains hum found"):
        out = _run(_stage("pixelsep.HumRemoval", stem), stem, 10_000)
    np.testing.assert_array_equal(out, stem)


def test_hum_detection_follows_a_drifting_mains_and_skips_missing_harmonics():
    stem = (_music(6.0) + _hum(50.2, 6.0, harmonics=3)).astype(np.float32)
    estimate = cleanup.detect_hum(cleanup.survey_blocks([stem], RATE, stem.shape[1]), RATE, harmonics=8)
    assert estimate.mains_hz == 50
    np.testing.assert_allclose(estimate.frequencies_hz, [50.2, 100.4, 150.6], atol=0.05)


def test_notes_near_multiples_of_the_mains_are_not_hum():
    """Notes come and go (here F4, 349.2 Hz, half a second in every two, and G2, 98 Hz, now and then): hum stays."""
    seconds = 12.0
    t = np.arange(int(seconds * RATE)) / RATE
    f4 = (t % 2 < 0.5) * np.sin(2 * np.pi * 349.23 * t)
    g2 = ((t % 3) > 2.2) * np.sin(2 * np.pi * 98.0 * t)
    stem = np.stack([0.2 * f4 + 0.2 * g2 + 0.005 * np.random.default_rng(5).standard_normal(t.size)] * 2)
    estimate = cleanup.detect_hum(cleanup.survey_blocks([stem.astype(np.float32)], RATE, t.size), RATE, harmonics=8)
    assert estimate.mains_hz is None


# ---------------------------------------------------------------------------------------------------
# Noise


def test_noise_reduction_lowers_broadband_noise_and_keeps_the_tone():
    seconds, rate = 8.0, RATE
    n = int(seconds * rate)
    t = np.arange(n) / rate
    noise = np.random.default_rng(2).normal(0, 0.02, (2, n))
    tone = np.where(t >= 3.0, 0.3 * np.sin(2 * np.pi * 440 * t), 0.0)  # 3 s of noise alone first
    stem = (tone + noise).astype(np.float32)
    out = _run(_stage("pixelsep.NoiseReduction", stem, reduction_db=12.0), stem, 5000)
    quiet = slice(int(0.5 * rate), 3 * rate)
    noise_only_db = 10 * np.log10(np.mean(out[:, quiet] ** 2) / np.mean(stem[:, quiet] ** 2))
    with_tone = slice(4 * rate, n)
    spectrum_in, spectrum_out = np.fft.rfft(stem[:, with_tone]), np.fft.rfft(out[:, with_tone])
    away = np.abs(np.fft.rfftfreq(n - 4 * rate, 1 / rate) - 440) > 200
    under_tone_db = 10 * np.log10(
        np.sum(np.abs(spectrum_out[:, away]) ** 2) / np.sum(np.abs(spectrum_in[:, away]) ** 2)
    )
    # 12 dB on the gated cells; the noise's own peaks above the threshold pass: about 7 dB in all
    assert noise_only_db < -6 and under_tone_db < -6
    assert abs(20 * np.log10(_amplitude(out, 440, 4 * rate, n) / _amplitude(stem, 440, 4 * rate, n))) < 1
    stronger = _run(_stage("pixelsep.NoiseReduction", stem, reduction_db=30.0, threshold_std=2.5), stem, 5000)
    assert 10 * np.log10(np.mean(stronger[:, quiet] ** 2) / np.mean(stem[:, quiet] ** 2)) < noise_only_db - 6


# ---------------------------------------------------------------------------------------------------
# Streaming


@pytest.mark.parametrize(
    "plugin, parameters",
    [
        ("pixelsep.HumRemoval", {}),
        ("pixelsep.HumRemoval", {"mains_hz": 60, "harmonics": 12}),
        ("pixelsep.NoiseReduction", {}),
        ("pixelsep.NoiseReduction", {"stationary": False}),
        ("pixelsep.Loudness", {"target_lufs": -18.0}),
    ],
)
def test_block_wise_equals_whole_stem(plugin, parameters):
    stem = _music(9.3) + _hum(50, 9.3).astype(np.float32)
    whole = _run(_stage(plugin, stem, **parameters), stem, stem.shape[1])
    for block in (97, 997, 4411, 176_401):
        np.testing.assert_allclose(_run(_stage(plugin, stem, **parameters), stem, block), whole, atol=1e-6, rtol=0)


def test_nothing_is_measured_when_a_chain_is_built():
    def no_audio():
        raise AssertionError("the stem was rendered at build time")

    context = StemContext("stem", RATE, 2, RATE * 10, no_audio)
    effects.check_effects(cleanup.cleanup_chain(-23.0), context)
    build_chain(cleanup.cleanup_chain(-23.0), context)


# ---------------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize(
    "plugin, parameters, message",
    [
        ("pixelsep.Loudness", {"target": -23}, "pixelsep.Loudness: unknown parameter 'target'"),
        ("pixelsep.Loudness", {"target_lufs": "loud"}, "pixelsep.Loudness: target_lufs must be a number"),
        ("pixelsep.Loudness", {"target_lufs": 3.0}, "pixelsep.Loudness: target_lufs is 3, outside"),
        ("pixelsep.Loudness", {"max_gain_db": True}, "pixelsep.Loudness: max_gain_db must be a number"),
        ("pixelsep.HumRemoval", {"mains_hz": 55}, 'pixelsep.HumRemoval: mains_hz must be "auto", 50 or 60'),
        ("pixelsep.HumRemoval", {"mains_hz": "50"}, "pixelsep.HumRemoval: mains_hz must be"),
        ("pixelsep.HumRemoval", {"harmonics": 2.5}, "pixelsep.HumRemoval: harmonics must be a whole number"),
        ("pixelsep.HumRemoval", {"harmonics": 0}, "pixelsep.HumRemoval: harmonics is 0, outside"),
        ("pixelsep.HumRemoval", {"width_hz": float("nan")}, "pixelsep.HumRemoval: width_hz must be a number"),
        ("pixelsep.NoiseReduction", {"reduction_db": -3}, "pixelsep.NoiseReduction: reduction_db is -3, outside"),
        ("pixelsep.NoiseReduction", {"stationary": "yes"}, "pixelsep.NoiseReduction: stationary must be true or false"),
        ("pixelsep.NoiseReduction", {"profile": "x\ny"}, "pixelsep.NoiseReduction: unknown parameter 'profile'"),
    ],
)
def test_parameter_errors_are_one_line(plugin, parameters, message):
    def no_audio():
        raise AssertionError("the stem was rendered")

    with pytest.raises(InputError) as caught:
        builder_for(plugin)(rcp.Effect(plugin, parameters), StemContext("stem", RATE, 2, RATE, no_audio))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_loudness_refuses_more_channels_than_the_meter_reads():
    with pytest.raises(InputError, match="pixelsep.Loudness: the stem has 6 channels"):
        builder_for("pixelsep.Loudness")(rcp.Effect("pixelsep.Loudness", {}), StemContext("s", RATE, 6, RATE, iter))


def test_noisereduce_is_imported_without_torch():
    code = (
        "import sys\nfrom pixelsep_plugin.effects import cleanup\ncleanup._import_noisereduce()\n"
        "assert 'noisereduce' in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ---------------------------------------------------------------------------------------------------
# The preset


def _recipe(effects_a: list | None = None) -> rcp.Recipe:
    clip = rcp.ClipRef(Path("/clips/concert.mp4"), "0" * 64, 10.0, 44100, "stereo", 441000, 320, 240, "25/1")
    sources = [
        rcp.SourceEdit("drum", [rcp.PartRef(10, 20, 5.0)], gain_db=3.0, effects=list(effects_a or [])),
        rcp.SourceEdit("accordion", [rcp.PartRef(100, 120, 5.0)]),
    ]
    return rcp.Recipe(clip, rcp.ModelRef("pixelsep-small", "1" * 64), sources).validate()


def test_the_preset_puts_the_cleanup_chains_and_turns_the_rest_down():
    reverb = rcp.Effect("Reverb", {"room_size": 0.3})
    original = _recipe([reverb])
    cleaned = cleanup.cleanup_preset(original, target_lufs=-20.0, rest_db=-9.0)
    plugins = ["pixelsep.HumRemoval", "pixelsep.NoiseReduction", "pixelsep.Loudness"]
    assert [e.plugin for e in cleaned.source("drum").effects] == [*plugins, "Reverb"]
    assert [e.plugin for e in cleaned.source("accordion").effects] == plugins
    assert all(s.effects[2].parameters["target_lufs"] == -20.0 for s in cleaned.sources)
    assert [e.plugin for e in cleaned.residual.effects] == plugins[:2]
    assert cleaned.residual.gain_db == -9.0 and cleaned.source("drum").gain_db == 3.0
    assert [e.plugin for e in original.source("drum").effects] == ["Reverb"] and original.residual.gain_db == 0
    for effect in cleaned.sources[0].effects[:3] + cleaned.residual.effects:  # every parameter is valid
        builder_for(effect.plugin)(effect, StemContext("s", RATE, 2, RATE, iter))


def test_the_preset_does_not_stack():
    once = cleanup.cleanup_preset(_recipe([rcp.Effect("Reverb", {})]))
    twice = cleanup.cleanup_preset(once)
    assert rcp.to_dict(twice) == rcp.to_dict(once)
    retargeted = cleanup.cleanup_preset(cleanup.cleanup_preset(_recipe([rcp.Effect("Reverb", {})]), -16.0, -6.0))
    assert rcp.to_dict(retargeted) == rcp.to_dict(once)


def test_the_preset_checks_its_values():
    with pytest.raises(InputError, match="cleanup preset: target_lufs is 5, outside"):
        cleanup.cleanup_preset(_recipe(), target_lufs=5.0)
    with pytest.raises(InputError, match="cleanup preset: rest_db must be a number"):
        cleanup.cleanup_preset(_recipe(), rest_db=float("nan"))


def test_a_recipe_with_the_preset_renders(separator, clip_factory, tmp_path):
    seconds = 3.0
    t = np.arange(int(seconds * RATE)) / RATE
    tones = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 660 * t) * (t > 1)
    hiss = np.random.default_rng(4).normal(0, 0.01, (2, t.size))
    audio = (tones + _hum(50, seconds, level=0.08) + hiss).astype(np.float32)
    clip = clip_factory("cleanup.mp4", seconds=seconds, audio=audio)
    analysis, _ = separator.analyze(clip)
    sources = [Source("red", (Point(30, 60, 1.0),)), Source("blue", (Box(120, 30, 160, 90, 0.5),))]
    recipe = rcp.new_recipe(rcp.clip_ref(clip), separator.package.model_id, separator.package.checksum, sources)
    recipe = cleanup.cleanup_preset(recipe, target_lufs=-23.0, rest_db=-12.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cleanup.CleanupWarning)  # the untrained model's stems may be near silent
        result = render_recipe(separator, analysis, recipe, tmp_path)
    assert set(result.processed) == {"red", "blue", "residual"}
    assert all(path.name.endswith(f".{name}.fx.wav") for name, path in result.processed.items())
    fx = {name: media.read_audio(path)[0] for name, path in result.processed.items()}
    stems = {name: media.read_audio(path)[0] for name, path in result.stems.items()}
    remix = media.read_audio(result.remix)[0]
    assert all(f.shape == remix.shape == stems["red"].shape for f in fx.values())
    expected = fx["red"] + fx["blue"] + 10 ** (-12 / 20) * fx["residual"]
    np.testing.assert_allclose(remix, expected, atol=1e-5)
    original = media.read_audio(clip)[0]
    for frequency in (50, 100, 150):  # the hum is gone from the remix
        kept = _amplitude(remix, frequency, RATE, t.size) / _amplitude(original, frequency, RATE, t.size)
        assert 20 * np.log10(kept) < -20
