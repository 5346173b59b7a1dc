"""The Blender host's decisions without Blender: channels, stem paths, the recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_bridge.blender.plan import (
    Click,
    Recipe,
    SourceEntry,
    StripSpan,
    free_channels,
    locate_stems,
    mute_before,
    muted_tag,
    picture_seconds,
    relocate_after_save,
    safe_name,
    stem_folder,
    stem_prefix,
    stem_span,
    stem_tag,
    strip_name,
)


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


def test_recipe_round_trip_and_version():
    recipe = Recipe(
        "/clips/duet.mp4", "ab" * 32, "pixelsep-small", "cd" * 32,
        [SourceEntry("violin", [Click(10, 20, 1.5), Click(0, 0, 2.0, 50, 60)], 0.5, "duet.mp4.violin")],
        "duet.mp4.residual", {"duet.mp4.001": False},
    )  # fmt: skip
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    assert again.source("violin").clicks[1].x1 == 50 and again.source("cello") is None
    with pytest.raises(ValueError, match="version"):
        Recipe.from_json(recipe.to_json().replace('"version": 1', '"version": 9'))
    assert Path(again.clip).name == "duet.mp4"


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


def _recipe_with_stems() -> Recipe:
    recipe = Recipe("/clips/duet.mp4", "ab" * 32, "pixelsep-small", "c" * 64)
    recipe.sources = [SourceEntry("drum", [Click(1, 2, 3)], strip="duet.drum"),
                      SourceEntry("residual", [Click(4, 5, 3)], strip="duet.residual")]  # fmt: skip
    recipe.residual_strip = "duet.residual.001"
    return recipe


def test_locate_stems_follows_renamed_strips_by_their_tags():
    recipe = _recipe_with_stems()
    tags = {"drum": stem_tag(recipe, "duet", "drum"), "residual": stem_tag(recipe, "duet", "residual"),
            None: stem_tag(recipe, "duet", None)}  # fmt: skip
    # the user renamed the drum's strip; a source called "residual" is not the residual
    tagged = [("my drum", tags["drum"]), ("duet.residual", tags["residual"]), ("duet.residual.001", tags[None])]
    locate_stems(recipe, tagged, {"duet", "my drum", "duet.residual", "duet.residual.001"})
    assert [s.strip for s in recipe.sources] == ["my drum", "duet.residual"]
    assert recipe.residual_strip == "duet.residual.001"


def test_locate_stems_keeps_the_named_strip_among_duplicates_and_forgets_deleted_ones():
    recipe = _recipe_with_stems()
    drum = stem_tag(recipe, "duet", "drum")
    other = Recipe("/clips/other.mp4", "cd" * 32, "pixelsep-small", "c" * 64)
    tagged = [("duet.drum.001", drum), ("duet.drum", drum), ("x", stem_tag(other, "other", None)), ("y", "not json")]
    # "duet.residual" was deleted; a plain strip now has the residual's old name: not taken
    locate_stems(recipe, tagged, {"duet.drum", "duet.drum.001", "x", "y", "duet.residual.001"})
    assert [s.strip for s in recipe.sources] == ["duet.drum", ""]
    assert recipe.residual_strip == ""


def test_locate_stems_of_an_untagged_recipe_go_by_name():
    recipe = _recipe_with_stems()
    recipe.key = ""  # made before stems were tagged
    locate_stems(recipe, [], {"duet.drum", "duet.residual.001"})
    assert [s.strip for s in recipe.sources] == ["duet.drum", ""] and recipe.residual_strip == "duet.residual.001"


def test_recipe_key_survives_json():
    recipe = _recipe_with_stems()
    again = Recipe.from_json(recipe.to_json())
    assert again.key == recipe.key and len(recipe.key) == 32
    assert Recipe("a", "b", "c", "d").key != recipe.key


def test_muted_tags_remember_the_mute_for_their_recipe_only():
    recipe, other = _recipe_with_stems(), _recipe_with_stems()
    assert mute_before(recipe, muted_tag(recipe, True)) is True
    assert mute_before(recipe, muted_tag(recipe, False)) is False
    assert mute_before(recipe, muted_tag(other, False)) is None
    assert mute_before(recipe, None) is None and mute_before(recipe, "{") is None and mute_before(recipe, "[]") is None
