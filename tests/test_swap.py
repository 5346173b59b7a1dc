"""The instrument swap: transcription finds the notes of melodies made here, note making on known
posteriorgrams, MIDI files (golden bytes, round trip), General MIDI names, BS.1770 loudness, the
pixelsep.Swap stage (aligned, as long as the stem, loudness-matched) and `pixelsep swap` + `render`."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import mir_eval
import numpy as np
import pytest

from host_bridge.cli.main import main
from pixelsep_plugin import media
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.effects import StemContext, build_chain, builder_for
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.swap import (
    Instrument,
    Note,
    SwapParameters,
    Transcriber,
    TranscriptionSettings,
    find_program,
    integrated_loudness,
    notes_of,
    read_midi,
    render_swap,
    with_swap,
    write_midi,
)
from pixelsep_plugin.swap.loudness import k_weighting
from pixelsep_plugin.swap.midi import midi_bytes
from pixelsep_plugin.swap.plan import plan_swap
from pixelsep_plugin.swap.transcribe import (
    FRAME_SECONDS,
    KEPT_FRAMES,
    NUM_PITCHES,
    Posteriorgrams,
    notes_from_posteriorgrams,
)

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
WINDOW_SECONDS = KEPT_FRAMES * FRAME_SECONDS  # 1.648 s: where the network's windows meet

# A melody whose notes start on both sides of the first two window seams (1.648 s, 3.297 s)
MELODY = [
    (0.20, 0.45, 60), (0.50, 0.75, 64), (0.80, 1.05, 67), (1.10, 1.45, 72), (1.55, 1.85, 71), (1.66, 1.90, 62),
    (2.00, 2.25, 69), (2.30, 2.55, 65), (2.60, 3.00, 64), (3.20, 3.45, 62), (3.32, 3.60, 74), (3.70, 3.95, 60),
    (4.00, 4.40, 67), (4.60, 4.85, 57), (4.95, 5.30, 59), (5.40, 5.80, 60),
]  # fmt: skip


def play(notes: list[tuple[float, float, int]], program: int, sample_rate: int = 44100, seconds: float = 6.5,
         velocity: int = 100) -> np.ndarray:  # fmt: skip
    """The notes played by a FluidR3 preset with tinysoundfont: float32 (2, seconds * sample_rate), dry."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(SOUNDFONT)
    synth.program_select(0, sfid, 0, program)
    actions = sorted(
        [(int(on * sample_rate), 1, p) for on, _, p in notes] + [(int(off * sample_rate), 0, p) for _, off, p in notes]
    )
    total = int(seconds * sample_rate)
    out = np.zeros((total, 2), dtype=np.float32)
    position = 0
    for when, on, pitch in actions:
        out[position:when] = np.frombuffer(synth.generate(when - position), dtype=np.float32).reshape(-1, 2)
        position = when
        synth.noteon(0, pitch, velocity) if on else synth.noteoff(0, pitch)
    out[position:] = np.frombuffer(synth.generate(total - position), dtype=np.float32).reshape(-1, 2)
    return np.ascontiguousarray(out.T)


def f1(reference: list[tuple[float, float, int]], notes: list[Note]) -> float:
    """Note F1: onset within 50 ms, pitch within 50 cents, offsets ignored (mir_eval)."""
    ref_i = np.array([[a, b] for a, b, _ in reference])
    ref_p = mir_eval.util.midi_to_hz(np.array([p for _, _, p in reference], dtype=float))
    est_i = np.array([[n.onset_seconds, n.offset_seconds] for n in notes]).reshape(-1, 2)
    est_p = mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mir_eval.transcription.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p, onset_tolerance=0.05,
                                                                  offset_ratio=None)[2]  # fmt: skip


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(threads=2)


# ---------------------------------------------------------------------------------------------------
# Transcription


# On clean solo FluidR3 stems the benchmark (benchmarks/results/transcription.json) measures a median
# F1 of 0.98 (piano) and 0.99 (trumpet), lower quartiles 0.95 and 0.97. 0.85 lets two of these 16
# notes be missed or doubled, and fails when framing, resampling or timing go wrong (a window seam
# shifted by one hop, a wrong rate: F1 falls towards 0).
@pytest.mark.parametrize(("program", "sample_rate", "channels"), [(0, 44100, 2), (56, 48000, 1), (0, 22050, 2)])
def test_transcription_finds_the_notes_of_a_melody(transcriber, program, sample_rate, channels):
    audio = play(MELODY, program, sample_rate)[:channels]
    notes = transcriber.transcribe(audio, sample_rate)
    assert f1(MELODY, notes) >= 0.85, notes
    matched = mir_eval.transcription.match_notes(
        np.array([[a, b] for a, b, _ in MELODY]), mir_eval.util.midi_to_hz(np.array([p for *_, p in MELODY], float)),
        np.array([[n.onset_seconds, n.offset_seconds] for n in notes]),
        mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], float)), onset_tolerance=0.05, offset_ratio=None,
    )  # fmt: skip
    errors = [notes[j].onset_seconds - MELODY[i][0] for i, j in matched]
    assert abs(float(np.median(errors))) < 0.02  # frames are placed in time without a bias
    assert all(1 <= n.velocity <= 127 and n.offset_seconds > n.onset_seconds for n in notes)


@pytest.mark.parametrize("seconds", [0.3, WINDOW_SECONDS, 2 * WINDOW_SECONDS + 0.01, 3.7])
def test_posteriorgrams_tile_any_length(transcriber, seconds):
    n = int(seconds * 22050)
    grams = transcriber.posteriorgrams(np.zeros(n, np.float32), 22050)
    assert grams.note.shape == grams.onset.shape == (n // 256 + 1, NUM_PITCHES)
    assert grams.contour.shape == (n // 256 + 1, 3 * NUM_PITCHES)
    assert transcriber.transcribe(np.zeros(n, np.float32), 22050) == []


def _grams(num_frames: int) -> Posteriorgrams:
    zeros = np.zeros((num_frames, NUM_PITCHES), np.float32)
    return Posteriorgrams(zeros.copy(), zeros.copy(), np.zeros((num_frames, 3 * NUM_PITCHES), np.float32))


def test_notes_from_known_posteriorgrams():
    grams = _grams(200)
    row = 60 - 21
    grams.note[10:40, row] = 0.8  # a note, with a 5-frame dip it bridges
    grams.note[22:27, row] = 0.1
    grams.onset[10, row] = 0.9
    grams.note[50:90, row] = 0.6  # struck twice: two notes, the first ends where the second starts
    grams.onset[50, row] = grams.onset[70, row] = 0.9
    grams.note[100:105, row + 7] = 0.9  # too short (5 frames = 58 ms)
    grams.onset[100, row + 7] = 0.9
    grams.note[120:160, row + 4] = 0.9  # no onset: no note by default
    grams.note[10:40, 90 - 21] = 0.9  # outside the pitch range asked for below
    grams.onset[10, 90 - 21] = 0.9
    settings = TranscriptionSettings(infer_onsets=False, highest_pitch=84)
    notes = notes_from_posteriorgrams(grams, settings)
    frames = [(round(n.onset_seconds / FRAME_SECONDS), round(n.offset_seconds / FRAME_SECONDS), n.pitch) for n in notes]
    assert frames == [(10, 40, 60), (50, 70, 60), (70, 90, 60)]
    assert notes[1].velocity == round(127 * 0.6)
    with_orphans = notes_from_posteriorgrams(grams, TranscriptionSettings(infer_onsets=False, highest_pitch=84,
                                                                          notes_without_onsets=True))  # fmt: skip
    assert (120, 160, 64) in [(round(n.onset_seconds / FRAME_SECONDS), round(n.offset_seconds / FRAME_SECONDS), n.pitch)
                              for n in with_orphans]  # fmt: skip


def test_transcription_settings_are_checked():
    with pytest.raises(InputError, match="onset threshold must be between 0 and 1"):
        TranscriptionSettings(onset_threshold=1.5).check()
    with pytest.raises(InputError, match="pitch range 90-80"):
        TranscriptionSettings(lowest_pitch=90, highest_pitch=80).check()


# ---------------------------------------------------------------------------------------------------
# MIDI files and programs


def test_midi_bytes_are_golden():
    data = midi_bytes([Note(0.0, 0.5, 60, 100), Note(0.5, 1.0, 64, 90)], program=27, track_name="t")
    expected = bytes.fromhex(
        "4d546864 00000006 0000 0001 01e0"  # MThd: format 0, one track, 480 ticks per quarter note
        "4d54726b 00000025"  # MTrk, 37 bytes
        "00ff030174"  # track name "t"
        "00ff510307a120"  # tempo 500000 us per quarter note (120 bpm: 960 ticks per second)
        "00c01b"  # program 27
        "00903c64"  # note on 60, velocity 100
        "8360803c40"  # 480 ticks later: note off 60
        "0090405a"  # note on 64, velocity 90
        "8360804040"  # note off 64
        "00ff2f00"  # end of track
    )
    assert data == expected


def test_midi_round_trip(tmp_path):
    notes = [Note(0.0, 0.25, 60, 100), Note(0.25, 0.5, 60, 80), Note(0.3, 1.7, 67, 64), Note(2.0004, 2.5, 72, 1)]
    path = write_midi(tmp_path / "melody.mid", notes, program=40, track_name="violin")
    back = notes_of(read_midi(path))
    assert [(n.pitch, n.velocity) for n in back] == [(n.pitch, n.velocity) for n in notes]
    for a, b in zip(back, notes, strict=True):
        assert abs(a.onset_seconds - b.onset_seconds) <= 0.5 / 960 + 1e-9
        assert abs(a.offset_seconds - b.offset_seconds) <= 0.5 / 960 + 1e-9
    # one key cannot sound twice: the earlier note ends where the next of its pitch starts
    overlapped = notes_of(read_midi(write_midi(tmp_path / "o.mid", [Note(0.0, 1.0, 60, 90), Note(0.5, 1.5, 60, 90)])))
    np.testing.assert_allclose(
        [(n.onset_seconds, n.offset_seconds) for n in overlapped], [(0, 0.5), (0.5, 1.5)], atol=1e-6
    )


def test_midi_errors_are_one_line(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_midi(tmp_path / "none.mid")
    (tmp_path / "bad.mid").write_bytes(b"RIFF0000")
    with pytest.raises(InputError, match="not a Standard MIDI File"):
        read_midi(tmp_path / "bad.mid")
    with pytest.raises(InputError, match=r"ends in \.mid"):
        write_midi(tmp_path / "notes.txt", [Note(0, 1, 60, 90)])
    with pytest.raises(InputError, match="velocity 1-127"):
        midi_bytes([Note(0, 1, 60, 0)])


@pytest.mark.parametrize(
    ("text", "program"),
    [("27", 27), ("0", 0), ("Electric Guitar (clean)", 27), ("electric guitar clean", 27), ("clean guitar", 27),
     ("TRUMPET", 56), ("muted trumpet", 59), ("accordion", 21), ("tango", 23), ("Bagpipe", 109), (73, 73)],
)  # fmt: skip
def test_program_names(text, program):
    assert find_program(text) == program


def test_program_errors_list_candidates():
    with pytest.raises(InputError) as error:
        find_program("sax")
    message = str(error.value)
    assert "fits 4 General MIDI programs" in message and "64 Soprano Sax" in message and "67 Baritone Sax" in message
    assert "\n" not in message
    with pytest.raises(InputError, match="did you mean Trumpet"):
        find_program("trumpt")
    with pytest.raises(InputError, match="numbered 0-127, not 128"):
        find_program("128")
    with pytest.raises(InputError, match="no General MIDI program is called 'kazoo'"):
        find_program("kazoo")


# ---------------------------------------------------------------------------------------------------
# Loudness


def test_k_weighting_is_the_recommendations_at_48k():
    (shelf_b, shelf_a), (high_b, high_a) = k_weighting(48000)
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-12)
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-12)
    np.testing.assert_allclose(high_b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(high_a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-12)


@pytest.mark.parametrize("sample_rate", [48000, 44100])
def test_loudness_of_a_full_scale_sine(sample_rate):
    t = np.arange(5 * sample_rate) / sample_rate
    sine = np.sin(2 * np.pi * 997 * t)
    assert integrated_loudness(sine, sample_rate) == pytest.approx(-3.01, abs=0.01)  # one channel
    assert integrated_loudness(np.stack([sine, sine]), sample_rate) == pytest.approx(0.0, abs=0.01)
    # silence does not count: of the 97 blocks, the 47 silent ones fall below -70 LUFS; 47 hold the tone
    # (-23.01 LUFS) and 3 straddle its end with 3/4, 1/2 and 1/4 of it
    gated = np.concatenate([sine * 0.1, np.zeros(5 * sample_rate)])
    assert integrated_loudness(gated, sample_rate) == pytest.approx(-23.01 + 10 * np.log10(48.5 / 50), abs=0.01)
    assert integrated_loudness(np.zeros(1000), sample_rate) == -np.inf


# ---------------------------------------------------------------------------------------------------
# The pixelsep.Swap stage


def _context(stem: np.ndarray, folder: Path, block: int = 4096) -> StemContext:
    def blocks():
        for start in range(0, stem.shape[1], block):
            yield stem[:, start : start + block]

    return StemContext("player", 44100, stem.shape[0], stem.shape[1], blocks, base_folder=folder)


@pytest.mark.parametrize("channels", [1, 2])
def test_the_swap_stage_is_aligned_as_long_as_the_stem_and_loudness_matched(tmp_path, channels):
    stem = play(MELODY, 0, seconds=6.1)[:channels] * np.float32(0.3)
    if channels == 2:
        stem[1] *= 0.5  # the player sits to the left
    notes = [Note(a, b, p, 100) for a, b, p in MELODY]
    write_midi(tmp_path / "player.mid", notes, program=56)
    parameters = plan_swap(stem, 44100, tmp_path / "player.mid", Instrument(56), "player.mid", None)
    assert (parameters.channel_gains_db is None) == (channels == 1)
    effect = rcp.Effect("pixelsep.Swap", parameters.to_parameters())
    context = _context(stem, tmp_path)
    chain = build_chain([effect], context)
    pieces = [chain.process(stem[:, s : s + size]) for s, size in _awkward_blocks(stem.shape[1])]
    out = np.concatenate([*pieces, chain.finish()], axis=1)
    assert out.shape == stem.shape
    expected = render_swap(parameters, tmp_path, 44100, channels, stem.shape[1])
    np.testing.assert_array_equal(out, expected)  # sample i is the new instrument at the stem's sample i
    assert abs(integrated_loudness(out, 44100) - integrated_loudness(stem, 44100)) < 1.0
    if channels == 2:

        def balance_db(x: np.ndarray) -> float:
            left, right = (float(np.mean(c.astype(np.float64) ** 2)) for c in x)
            return 10 * np.log10(left / right)

        assert balance_db(stem) > 5.0
        assert balance_db(out) == pytest.approx(balance_db(stem), abs=0.05)  # placed where the stem was
    # the same notes come back, played by the trumpet
    assert f1(MELODY, Transcriber(threads=2).transcribe(out, 44100)) >= 0.85
    # without a recorded gain the stage measures the stem itself
    unmatched = rcp.Effect("pixelsep.Swap", {"midi": "player.mid", "program": 56})
    measured = build_chain([unmatched], _context(stem, tmp_path))
    out = np.concatenate([measured.process(stem), measured.finish()], axis=1)
    assert abs(integrated_loudness(out, 44100) - integrated_loudness(stem, 44100)) < 1.0


def _awkward_blocks(total: int):
    start, sizes, i = 0, (1, 4095, 10_000, 333, 65_536), 0
    while start < total:
        size = min(sizes[i % len(sizes)], total - start)
        yield start, size
        start, i = start + size, i + 1


def test_the_swap_stage_rings_on_only_when_asked(tmp_path):
    write_midi(tmp_path / "late.mid", [Note(0.8, 1.0, 69, 110)], program=0)
    stem = np.zeros((2, 44100), np.float32)
    effect = rcp.Effect("pixelsep.Swap", {"midi": "late.mid", "program": 0, "gain_db": 0.0})
    cut = build_chain([effect], _context(stem, tmp_path))
    assert np.concatenate([cut.process(stem), cut.finish()], axis=1).shape == (2, 44100)
    ring = build_chain([effect], _context(stem, tmp_path), tail="ring")
    rung = np.concatenate([ring.process(stem), ring.finish()], axis=1)
    assert rung.shape[1] > 44100 and np.abs(rung[:, 44100:]).max() > 1e-4  # the piano's release after the end


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"midi": "missing.mid", "program": 0}, "missing.mid not found"),
        ({"midi": "p.mid", "program": 0, "volume": 3}, "has no parameter 'volume'"),
        ({"midi": "p.mid"}, "needs the parameter 'program'"),
        ({"midi": "p.mid", "program": 200}, "program must be a whole number 0-127"),
        ({"midi": "p.mid", "program": 0, "channel_gains_db": [0, 0, 0]}, "made for 3 channels, the stem has 2"),
        ({"midi": "p.mid", "program": 0, "soundfont": "none.sf2"}, "SoundFont .*none.sf2 not found"),
        ({"midi": "p.txt", "program": 0}, r"midi must end in \.mid"),
    ],
)
def test_swap_parameter_errors_are_one_line(tmp_path, parameters, message):
    write_midi(tmp_path / "p.mid", [Note(0, 0.5, 60, 90)])
    with pytest.raises(InputError, match=message) as error:
        builder_for("pixelsep.Swap")(rcp.Effect("pixelsep.Swap", parameters), _context(np.zeros((2, 100)), tmp_path))
    assert "\n" not in str(error.value)


def test_swap_parameters_round_trip():
    parameters = SwapParameters("a.mid", 27, 0, None, -3.5, (-1.0, 0.8))
    assert SwapParameters.from_parameters(json.loads(json.dumps(parameters.to_parameters()))) == parameters


# ---------------------------------------------------------------------------------------------------
# pixelsep swap, then pixelsep render


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def melody_recipe(small_model, clip_factory, tmp_path, capsys):
    """A clip whose sound is a piano melody, separated with --recipe: (recipe path, cache dir)."""
    project = tmp_path / "project"
    project.mkdir()
    audio = play(MELODY, 0, seconds=6.0) * np.float32(0.5)
    clip = project / "tune.mp4"
    shutil.copy(clip_factory("swap-melody.mp4", seconds=6.0, audio=audio), clip)
    cache = tmp_path / "cache"
    code, out, err = run(capsys, "separate", clip, "--at", "30,60@1", "--name", "red", "--box", "100,20,150,100",
                         "--name", "blue", "-o", project, "--recipe", "tune.json", "--model", small_model,
                         "--cache-dir", cache, "-q")  # fmt: skip
    assert code == 0, err
    return project / "tune.json", cache


def test_swap_writes_the_midi_and_the_recipe_entry_and_render_plays_it(melody_recipe, small_model, capsys):
    path, cache = melody_recipe
    options = ("--model", small_model, "--cache-dir", cache, "-q")
    code, out, err = run(capsys, "swap", path, "--source", "red", "--to", "violin", *options)
    assert code == 0, err
    assert "from cache" in out and "swapped red for Violin (program 40, bank 0)" in out
    code, out, err = run(
        capsys, "swap", path, "--source", "red", "--to", "Alto Sax", *options
    )  # a second swap replaces it
    assert code == 0, err
    midi = path.parent / "tune.red.mid"
    assert f"midi: {midi}" in out
    recipe = rcp.load(path)
    swaps = [e for e in recipe.source("red").effects if e.plugin == "pixelsep.Swap"]
    assert len(swaps) == 1 and recipe.source("red").effects[0] is swaps[0]
    parameters = SwapParameters.from_parameters(swaps[0].parameters)
    assert (parameters.midi, parameters.program, parameters.soundfont) == ("tune.red.mid", 65, None)
    assert recipe.source("blue").effects == []
    notes = notes_of(read_midi(midi))
    assert f1(MELODY, notes) >= 0.85  # the untrained test model's stem is the whole clip, scaled: the melody

    code, out, err = run(capsys, "render", path, *options)
    assert code == 0, err
    stem, rate = media.read_audio(path.parent / "tune.red.wav")
    swapped, _ = media.read_audio(path.parent / "tune.red.fx.wav")
    assert swapped.shape == stem.shape
    assert abs(integrated_loudness(swapped, rate) - integrated_loudness(stem, rate)) < 1.0
    np.testing.assert_allclose(swapped, render_swap(parameters, path.parent, rate, 2, stem.shape[1]), atol=1e-6)
    # a saxophone, not the piano: its spectrum differs from the stem's where the notes overlap
    spectra = [np.abs(np.fft.rfft(x.mean(axis=0))) for x in (stem, swapped)]
    bands = [np.add.reduceat(s, np.geomspace(20, s.size - 1, 40).astype(int)) for s in spectra]
    shapes = [b / np.linalg.norm(b) for b in bands]
    assert float(shapes[0] @ shapes[1]) < 0.95
    assert f1([(n.onset_seconds, n.offset_seconds, n.pitch) for n in notes],
              Transcriber(threads=2).transcribe(swapped, rate)) >= 0.7  # fmt: skip


def test_a_swap_goes_first_and_replaces_an_earlier_one(melody_recipe):
    path, _ = melody_recipe
    recipe = rcp.load(path)
    recipe.source("red").effects.append(rcp.Effect("Reverb", {"room_size": 0.5}))
    first = with_swap(recipe, "red", SwapParameters("a.mid", 40))
    second = with_swap(first, "red", SwapParameters("b.mid", 56, gain_db=-2.0))
    assert [(e.plugin, e.parameters.get("midi")) for e in second.source("red").effects] == [
        ("pixelsep.Swap", "b.mid"), ("Reverb", None)
    ]  # fmt: skip
    assert [e.plugin for e in first.source("red").effects] == ["pixelsep.Swap", "Reverb"]  # copies, not changed
    assert [e.plugin for e in recipe.source("red").effects] == ["Reverb"]
    with pytest.raises(InputError, match="no source named 'green' to swap"):
        with_swap(recipe, "green", SwapParameters("a.mid", 40))


def test_swap_problems_are_one_line_before_any_analysis(melody_recipe, small_model, capsys, tmp_path):
    path, _ = melody_recipe
    empty_cache = tmp_path / "no-cache"
    options = ("--model", small_model, "--cache-dir", empty_cache, "-q")
    for args, message in [
        (("--source", "green", "--to", "violin"), "no source named 'green' to swap: the sources are red, blue"),
        (("--source", "red", "--to", "guitar"), "fits 9 General MIDI programs"),
        (("--source", "red", "--to", "violin", "--soundfont", tmp_path / "none.sf2"), "none.sf2 not found"),
        (("--source", "red", "--to", "violin", "--bank", "5"), "has no preset at bank 5 program 40"),
    ]:
        code, out, err = run(capsys, "swap", path, *args, *options)
        assert code == 1 and message in err and err.count("\n") == 1, err
    assert not empty_cache.exists() and not (path.parent / "tune.red.mid").exists()
    assert rcp.load(path).source("red").effects == []
