"""The Blender host's decisions without Blender: channels, stem paths, the edit and its recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host_bridge.blender.plan import (
    Edit,
    HostState,
    StripMix,
    StripSpan,
    add_click,
    adopt,
    chain_summary,
    free_channels,
    gain_db,
    locate_stems,
    mute_before,
    muted_tag,
    picture_seconds,
    read_edit,
    recipe_as_played,
    relocate_after_save,
    safe_name,
    stem_folder,
    stem_prefix,
    stem_recipe,
    stem_span,
    stem_tag,
    strip_name,
)
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.errors import InputError


def test_free_channels_skip_strips_that_overlap_in_time():
    occupied = [
        StripSpan("movie", 1, 1, 241),
        StripSpan("sound", 2, 1, 241),
        StripSpan("title", 3, 100, 120),  # overlaps
        StripSpan("later", 4, 241, 300),  # starts where the movie ends: no overlap
        StripSpan("before", 5, -50, 1),  # ends where it starts: no overlap
    ]
    assert free_channels(occupied, 1, 241, 3, lowest=2) == [4, 5, 6]
    assert free_channels(occupied, 1, 241, 1, lowest=1) == [4]


def test_free_channels_run_out():
    occupied = [StripSpan(f"s{c}", c, 0, 10) for c in range(1, 129)]
    with pytest.raises(ValueError, match="no 1 free sequencer channels"):
        free_channels(occupied, 5, 6, 1, lowest=1)


def test_stems_go_next_to_a_saved_blend_as_relative_paths(tmp_path):
    folder, stored = stem_folder(str(tmp_path / "edit.blend"), "ab" * 32, "duet.mp4", tmp_path / "tmp")
    assert folder == tmp_path / "pixelsep" / "duet.mp4-abababababab"
    assert stored == "//pixelsep/duet.mp4-abababababab/"


def test_stems_of_an_unsaved_file_wait_in_a_temporary_folder_then_move(tmp_path):
    temp = tmp_path / "tmp"
    folder, stored = stem_folder("", "cd" * 32, "My Clip!", temp)
    assert folder == temp / "My_Clip-cdcdcdcdcdcd" and stored == str(folder) + "/"
    moved = relocate_after_save(stored + "violin.wav", temp, str(tmp_path / "proj" / "edit.blend"))
    assert moved == (
        folder / "violin.wav",
        tmp_path / "proj" / "pixelsep" / "My_Clip-cdcdcdcdcdcd" / "violin.wav",
        "//pixelsep/My_Clip-cdcdcdcdcdcd/violin.wav",
    )
    assert relocate_after_save("//pixelsep/x/violin.wav", temp, str(tmp_path / "e.blend")) is None
    assert relocate_after_save("/elsewhere/violin.wav", temp, str(tmp_path / "e.blend")) is None


def test_names():
    assert safe_name(" violin (left) ") == "violin_left"
    assert safe_name("...") == "source"
    assert strip_name("duet.mp4", "violin") == "duet.mp4.violin"
    assert stem_prefix("My Clip!", 3) == "My_Clip.r3"
    assert len(strip_name("x" * 60, "violin")) == 63


def _recipe(path: str = "/clips/duet.mp4", sha: str = "ab" * 32) -> rcp.Recipe:
    clip = rcp.ClipRef(Path(path), sha, 10.0, 44100, "stereo", 441000, 480, 360, "24/1")
    return rcp.Recipe(clip, rcp.ModelRef("pixelsep-small", "cd" * 32))


def test_the_edit_is_the_engines_recipe_plus_the_hosts_strips():
    edit = Edit(_recipe(), HostState({"violin": "duet.mp4.violin"}, "duet.mp4.residual", {"duet.mp4.001": False}))
    assert add_click(edit, "violin", 10, 20, 1.5) == "violin"
    assert add_click(edit, "violin", 0, 0, 2.0, 50, 60) == "violin"
    assert add_click(edit, "", 100, 100, 3.0) == "source1"
    recipe_text, host_text = edit.stored()
    assert json.loads(recipe_text)["format"] == "pixelsep-recipe"  # the document every host reads
    assert "strips" not in recipe_text and "duet.mp4.violin" not in recipe_text  # bookkeeping apart
    again = read_edit(recipe_text, host_text)
    assert again == edit
    assert again.recipe.source("violin").parts[1] == rcp.PartRef(0, 0, 2.0, 50, 60)
    with pytest.raises(ValueError, match="version"):
        read_edit(recipe_text, host_text.replace('"version": 2', '"version": 9'))
    with pytest.raises(InputError, match="not usable"):
        add_click(edit, "a/b", 1, 1, 1.0)
    with pytest.raises(InputError, match="outside the 480x360 frame"):
        add_click(edit, "violin", 480, 1, 1.0)


def test_an_edit_stored_by_the_first_extension_is_read(tmp_path):
    from pixelsep_plugin import media

    clip = media.make_test_clip(tmp_path / "old.mp4", seconds=1.0, width=160, height=120)
    old = {"clip": str(clip), "clip_sha256": "ab" * 32, "model_id": "pixelsep-small", "model_checksum": "cd" * 32,
           "sources": [{"name": "violin", "clicks": [{"x": 10, "y": 20, "time_seconds": 0.5, "x1": None, "y1": None}],
                        "gain": 0.5, "strip": "old.violin"}],
           "residual_strip": "old.residual", "muted": {"old.sound": False}, "revision": 2, "version": 1, "key": "k" * 32}  # fmt: skip
    edit = read_edit(json.dumps(old), None)
    assert edit.recipe.source("violin").gain_db == pytest.approx(-6.0206, abs=1e-3)
    assert edit.recipe.clip.width == 160 and edit.recipe.clip.frame_rate == "30/1"
    assert edit.state == HostState({"violin": "old.violin"}, "old.residual", {"old.sound": False}, 2, "k" * 32)


def test_the_recipe_as_the_strips_play_it():
    edit = Edit(_recipe(), HostState({"violin": "v", "cello": "c"}, "r"))
    add_click(edit, "violin", 10, 20, 1.0)
    add_click(edit, "cello", 30, 40, 1.0)
    played = recipe_as_played(edit, {"v": StripMix(0.5, False), "c": StripMix(1.0, True), "r": StripMix(0.0, False)})
    assert played.source("violin").gain_db == pytest.approx(-6.0206, abs=1e-3) and not played.source("violin").mute
    assert played.source("cello").mute and played.residual.mute
    assert edit.recipe.source("cello").mute is False  # the edit itself is not changed
    assert recipe_as_played(edit, {}) == edit.recipe  # strips gone: the recipe's own values
    assert rcp.db_to_linear(gain_db(0.3)) == pytest.approx(0.3) and gain_db(0.0) == -120.0 and gain_db(1e9) == 36.0


def test_a_recipe_opened_from_a_file_must_be_of_the_strips_clip():
    loaded = _recipe("/elsewhere/duet.mp4")
    add_click(Edit(loaded), "violin", 10, 20, 1.0)
    state = HostState({"violin": "s"}, "r")
    edit = adopt(Edit(_recipe(), state), loaded, Path("/clips/duet.mp4"), "ab" * 32)
    assert edit.recipe.clip.path == Path("/clips/duet.mp4") and edit.state is state
    assert [s.name for s in edit.recipe.sources] == ["violin"]
    with pytest.raises(InputError, match="made on another clip"):
        adopt(None, loaded, Path("/clips/other.mp4"), "ef" * 32)


def test_picture_seconds_count_the_movies_own_frames():
    assert picture_seconds(131, 11, 24.0) == pytest.approx(5.0)  # frame 120 of a 24 fps movie
    assert picture_seconds(131, 11, 30.0) == pytest.approx(4.0)
    assert picture_seconds(5, 11, 24.0) == 0.0  # before the strip: its first picture
    assert picture_seconds(11 + 2997, 11, 29.97) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        picture_seconds(1, 1, 0.0)


def test_stem_span_is_the_movie_strips_span_when_the_rates_agree():
    assert stem_span(11, 35, 251, 24.0, 24.0) == (35, 251)


def test_stem_span_keeps_real_time_when_the_rates_differ():
    # a 10 s, 24 fps movie in a 30 fps scene: Blender shows its 240 frames in 240 scene frames (8 s)
    # while its sound lasts 300; a stem plays like that sound, trims carried over as movie time
    assert stem_span(1, 1, 241, 30.0, 24.0) == (1, 301)
    assert stem_span(301, 325, 541, 30.0, 24.0) == (331, 601)  # 1 s trimmed
    # 23.976 fps footage in a 24 fps scene: a minute's 1439 pictures are 1440.4 sound frames
    assert stem_span(1, 1, 1 + 1439, 24.0, 24000 / 1001) == (1, 1 + round(1439 * 24 * 1001 / 24000))
    with pytest.raises(ValueError):
        stem_span(1, 1, 2, 0.0, 24.0)


def _recipe_with_stems() -> Edit:
    edit = Edit(_recipe(), HostState({"drum": "duet.drum", "bass": "duet.residual"}, "duet.residual.001"))
    add_click(edit, "drum", 1, 2, 3)
    add_click(edit, "bass", 4, 5, 3)  # a source whose strip has the residual's usual name
    return edit


def _strips(edit: Edit) -> list[str]:
    return [edit.state.strips[s.name] for s in edit.recipe.sources]


def test_locate_stems_follows_renamed_strips_by_their_tags():
    edit = _recipe_with_stems()
    tags = {"drum": stem_tag(edit, "duet", "drum"), "bass": stem_tag(edit, "duet", "bass"),
            None: stem_tag(edit, "duet", None)}  # fmt: skip
    # the user renamed the drum's strip; a strip named like the residual's is the bass's by its tag
    tagged = [("my drum", tags["drum"]), ("duet.residual", tags["bass"]), ("duet.residual.001", tags[None])]
    locate_stems(edit, tagged, {"duet", "my drum", "duet.residual", "duet.residual.001"})
    assert _strips(edit) == ["my drum", "duet.residual"]
    assert edit.state.residual_strip == "duet.residual.001"


def test_locate_stems_keeps_the_named_strip_among_duplicates_and_forgets_deleted_ones():
    edit = _recipe_with_stems()
    drum = stem_tag(edit, "duet", "drum")
    other = Edit(_recipe("/clips/other.mp4", "cd" * 32))
    tagged = [("duet.drum.001", drum), ("duet.drum", drum), ("x", stem_tag(other, "other", None)), ("y", "not json")]
    # "duet.residual" was deleted; a plain strip now has the residual's old name: not taken
    locate_stems(edit, tagged, {"duet.drum", "duet.drum.001", "x", "y", "duet.residual.001"})
    assert _strips(edit) == ["duet.drum", ""]
    assert edit.state.residual_strip == ""


def test_locate_stems_of_an_untagged_edit_go_by_name():
    edit = _recipe_with_stems()
    edit.state.key = ""  # made before stems were tagged
    locate_stems(edit, [], {"duet.drum", "duet.residual.001"})
    assert _strips(edit) == ["duet.drum", ""] and edit.state.residual_strip == "duet.residual.001"


def test_the_edits_key_survives_json():
    edit = _recipe_with_stems()
    again = read_edit(*edit.stored())
    assert again.state.key == edit.state.key and len(edit.state.key) == 32
    assert HostState().key != edit.state.key


def test_muted_tags_remember_the_mute_for_their_recipe_only():
    recipe, other = _recipe_with_stems(), _recipe_with_stems()
    assert mute_before(recipe, muted_tag(recipe, True)) is True
    assert mute_before(recipe, muted_tag(recipe, False)) is False
    assert mute_before(recipe, muted_tag(other, False)) is None
    assert mute_before(recipe, None) is None and mute_before(recipe, "{") is None and mute_before(recipe, "[]") is None


def test_a_renders_stems_are_named_by_strip_and_revision():
    recipe = _recipe()
    stems = stem_recipe(recipe, "My Clip!", 3)
    assert stems.prefix == "My_Clip.r3" and stems.output.format == "wav" and stems.output.residual
    assert recipe.output.prefix == ""  # the edit itself keeps its own settings
    assert stem_recipe(recipe, "x" * 63, 12).validate().prefix == "x" * 48 + ".r12"


def test_the_panel_summarises_each_chain():
    effects = [rcp.Effect("pixelsep.Swap", {"program": 56, "program_name": "Trumpet"}), rcp.Effect("Reverb", {}),
               rcp.Effect("/plugins/Dragonfly Room.vst3", {}), rcp.Effect("pixelsep.Loudness", {"target_lufs": -23})]  # fmt: skip
    assert chain_summary(effects) == "swap to Trumpet, Reverb, Dragonfly Room, Loudness"
    assert chain_summary([]) == ""


def test_the_first_span_surrounds_the_playhead_inside_the_clip():
    from host_bridge.blender.plan import first_span

    assert first_span(30.0, 3600.0) == (28.0, 38.0)  # 2 s before, 8 s after
    assert first_span(1.0, 3600.0) == (0.0, 10.0)  # near the start: moved in, still 10 s
    assert first_span(3599.0, 3600.0) == (3590.0, 3600.0)  # near the end too
    assert first_span(3600.0, 3600.0) == (3590.0, 3600.0)
    assert first_span(4.0, 6.5) == (0.0, 6.5)  # a clip shorter than the span: all of it
    assert first_span(10.0, 60.0, before_seconds=0.0, after_seconds=5.0) == (10.0, 15.0)
    for bad in [(10.0, 0.0), (10.0, -1.0)]:
        with pytest.raises(ValueError):
            first_span(*bad)
    with pytest.raises(ValueError):
        first_span(1.0, 10.0, before_seconds=0.0, after_seconds=0.0)


def test_stand_ins_and_stems_are_named_after_the_render(tmp_path):
    from host_bridge.blender.plan import is_current_render, span_file, stem_files

    edit = Edit(_recipe())
    add_click(edit, "violin", 10, 20, 1.5)
    add_click(edit, "cello", 30, 20, 1.5)
    edit.recipe.source("cello").effects.append(rcp.Effect("Gain", {"gain_db": -3.0}))
    files = stem_files(edit.recipe, "duet.001", 3, tmp_path)
    assert files == {
        "violin": tmp_path / "duet.001.r3.violin.wav",
        "cello": tmp_path / "duet.001.r3.cello.fx.wav",  # a source with effects plays its processed stem
        "residual": tmp_path / "duet.001.r3.residual.wav",
    }
    assert span_file(files["violin"]) == tmp_path / "duet.001.r3.violin.span.wav"
    assert span_file(files["cello"]) == tmp_path / "duet.001.r3.cello.fx.span.wav"
    edit.state.revision = 3
    assert is_current_render(edit, 3)
    assert not is_current_render(edit, 2)  # a later click rendered again
    assert not is_current_render(None, 3)  # the separation was removed


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_a_stand_in_is_as_long_as_the_stem_and_silent_outside_the_span(tmp_path, channels):
    from host_bridge.blender.preview import write_span_wav
    from pixelsep_plugin import media

    rate, total, start = 44100, 44100 * 3 + 17, 50_000
    rng = np.random.default_rng(channels)
    span = rng.uniform(-0.9, 0.9, (channels, 30_000)).astype(np.float32)
    span[0, :3] = [1.5, -1.5, 0.0]  # clipped to full scale
    path = write_span_wav(tmp_path / "a.span.wav", span, start, total, rate)
    assert not list(tmp_path.glob(".*"))  # written under a temporary name, renamed into place
    audio, read_rate = media.read_audio(path)
    assert read_rate == rate and audio.shape == (channels, total)
    expected = np.clip(span, -1, 32767 / 32768)
    np.testing.assert_allclose(audio[:, start : start + 30_000], expected, atol=0.5 / 32768 + 1e-7)
    assert not audio[:, :start].any() and not audio[:, start + 30_000 :].any()
    with pytest.raises(ValueError):
        write_span_wav(tmp_path / "b.wav", span, total - 10, total, rate)  # does not fit in the stem
    with pytest.raises(ValueError):
        write_span_wav(tmp_path / "c.wav", span, 0, 2**31, rate)  # past the WAV size limit
