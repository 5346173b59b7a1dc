"""The previewer's pure logic (host_bridge.app.model) and its live preview (host_bridge.app.engine), no Qt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host_bridge.app import model
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Box, Point, track_part

REPO = Path(__file__).resolve().parents[1]
DUET = REPO / "examples" / "duet.mp4"


def blank_recipe(width: int = 480, height: int = 360, seconds: float = 10.0) -> rcp.Recipe:
    clip = rcp.ClipRef(Path("/clips/duet.mp4"), "0" * 64, seconds, 44100, "stereo", int(seconds * 44100),
                       width, height, "24/1")  # fmt: skip
    return rcp.Recipe(clip, rcp.ModelRef("pixelsep-small", "1" * 64))


def test_clicks_make_sources_and_parts():
    editor = model.Editor(blank_recipe())
    assert editor.click(136, 88, 5.0) == "source1"
    assert editor.click(365, 186, 5.0) == "source2"
    # Shift+click: one more part of the selected source (the last one added)
    assert editor.click(400, 200, 6.0, add_part=True) == "source2"
    # a drag: a box, corners in any order, clipped to the frame
    assert editor.click(500, 300, 2.0, 420, 250) == "source3"
    sources = editor.recipe.sources
    assert [s.name for s in sources] == ["source1", "source2", "source3"]
    assert [(p.x, p.y, p.time_seconds) for p in sources[1].parts] == [(365, 186, 5.0), (400, 200, 6.0)]
    box = sources[2].parts[0]
    assert (box.x, box.y, box.x1, box.y1, box.is_box) == (420, 250, 480, 300, True)
    assert editor.selected == "source3"
    # the engine sees the same queries
    queries = rcp.engine_sources(editor.recipe)
    assert queries[0].parts == (Point(136, 88, 5.0),)
    assert queries[2].parts == (Box(420, 250, 480, 300, 2.0),)


def test_click_without_selection_adds_a_source_and_empty_box_is_refused():
    editor = model.Editor(blank_recipe())
    assert editor.click(10, 10, 0.0, add_part=True) == "source1"  # nothing selected: a new source
    with pytest.raises(InputError, match="empty"):
        editor.click(100, 100, 1.0, 100.4, 180)
    assert len(editor.recipe.sources) == 1 and editor.can_undo and len(editor.undo_steps) == 1


def test_names_fill_gaps_case_insensitively():
    editor = model.Editor(blank_recipe())
    editor.click(1, 1, 0)
    editor.click(2, 2, 0)
    editor.rename("source1", "Drum")
    assert editor.click(3, 3, 0) == "source1"
    with pytest.raises(InputError, match="already"):
        editor.rename("source2", "drum")
    with pytest.raises(InputError, match="reserved"):
        editor.rename("source2", "Residual")
    assert [s.name for s in editor.recipe.sources] == ["Drum", "source2", "source1"]


def test_gains_mute_solo_and_linear_gains():
    editor = model.Editor(blank_recipe())
    editor.click(1, 1, 0)
    editor.click(2, 2, 0)
    editor.set_gain("source1", -6.0)
    editor.set_gain("source1", -12.0)  # one drag: one undo step
    editor.end_merge()
    editor.set_gain("residual", 200.0)  # clamped to the recipe's range
    assert editor.recipe.residual.gain_db == rcp.GAIN_DB_RANGE[1]
    gains, rest = rcp.linear_gains(editor.recipe)
    assert gains == pytest.approx([10 ** (-12 / 20), 1.0]) and rest == pytest.approx(10 ** (36 / 20))
    editor.set_mute("source2", True)
    assert rcp.linear_gains(editor.recipe)[0][1] == 0.0
    editor.set_solo("source1", True)
    gains, rest = rcp.linear_gains(editor.recipe)
    assert gains[1] == 0.0 and rest == 0.0 and gains[0] > 0
    with pytest.raises(InputError):
        editor.set_solo("residual", True)
    with pytest.raises(InputError):
        editor.set_gain("nobody", 1.0)
    labels = [step.label for step in editor.undo_steps]
    assert labels == ["add source1", "add source2", "volume of source1", "volume of residual", "mute source2",
                      "solo source1"]  # fmt: skip


def test_undo_redo_restores_every_edit():
    editor = model.Editor(blank_recipe())
    snapshots = [rcp.to_dict(editor.recipe)]
    editor.click(136, 88, 5.0)
    snapshots.append(rcp.to_dict(editor.recipe))
    editor.set_gain("source1", 3.0)
    snapshots.append(rcp.to_dict(editor.recipe))
    editor.rename("source1", "drum")
    snapshots.append(rcp.to_dict(editor.recipe))
    editor.remove("drum")
    snapshots.append(rcp.to_dict(editor.recipe))
    for expected in reversed(snapshots[:-1]):
        editor.undo()
        assert rcp.to_dict(editor.recipe) == expected
    assert editor.undo() is None and not editor.can_undo
    for expected in snapshots[1:]:
        editor.redo()
        assert rcp.to_dict(editor.recipe) == expected
    assert editor.redo() is None
    editor.undo()
    editor.click(10, 10, 1.0)  # a new edit drops the redo history
    assert not editor.can_redo


def test_undo_is_independent_of_later_changes():
    editor = model.Editor(blank_recipe())
    editor.click(1, 1, 0)
    editor.recipe.sources[0].gain_db = 99  # a view must not be able to change the history
    editor.undo()
    editor.redo()
    assert editor.recipe.sources[0].gain_db == 0.0


def test_slider_mapping_and_labels():
    assert model.slider_to_db(model.db_to_slider(-6.5)) == -6.5
    assert model.db_to_slider(-500) == model.db_to_slider(model.GAIN_SLIDER_DB[0])
    assert model.db_to_slider(99) == model.db_to_slider(model.GAIN_SLIDER_DB[1])
    assert model.format_db(3) == "+3.0 dB" and model.format_db(-1, muted=True) == "muted"


def test_signature_ignores_gains_and_names():
    editor = model.Editor(blank_recipe())
    editor.click(1, 1, 0)
    before = model.source_signature(editor.recipe)
    editor.set_gain("source1", -3)
    editor.rename("source1", "x")
    editor.set_mute("x", True)
    assert model.source_signature(editor.recipe) == before
    editor.click(5, 5, 0, add_part=True)
    assert model.source_signature(editor.recipe) != before


@pytest.mark.parametrize("playhead, count, ahead, behind, expected", [
    (3, 10, 2, 1, [3, 4, 5, 2]),
    (0, 3, 5, 2, [0, 1, 2]),
    (9, 10, 3, 2, [9, 8, 7]),
    (50, 10, 1, 1, [9, 8]),
])  # fmt: skip
def test_chunk_order(playhead, count, ahead, behind, expected):
    assert model.chunk_order(playhead, count, ahead, behind) == expected


def test_chunk_bounds_cover_the_clip():
    covered = [model.chunk_bounds(i, 1000, 3500) for i in range(model.chunk_count(3500, 1000))]
    assert covered == [(0, 1000), (1000, 2000), (2000, 3000), (3000, 3500)]


def test_remix_from_stems_is_the_recipe_remix():
    rng = np.random.default_rng(0)
    stems = rng.standard_normal((2, 2, 500)).astype(np.float32)
    residual = rng.standard_normal((2, 500)).astype(np.float32)
    original = stems.sum(axis=0) + residual
    assert np.array_equal(model.remix_from_stems(original, stems, [1.0, 1.0], 1.0), original)
    gains, rest = [0.5, 2.0], 0.25
    expected = gains[0] * stems[0] + gains[1] * stems[1] + rest * residual
    np.testing.assert_allclose(model.remix_from_stems(original, stems, gains, rest), expected, atol=1e-5)
    solo = model.remix_from_stems(original, stems, [1.0, 0.0], 0.0)
    np.testing.assert_allclose(solo, stems[0], atol=1e-5)


@pytest.mark.parametrize("part", [
    rcp.PartRef(136, 88, 5.0), rcp.PartRef(365, 186, 2.0), rcp.PartRef(470, 350, 9.0),
    rcp.PartRef(80, 30, 5.0, 200, 160), rcp.PartRef(300, 120, 1.0, 470, 350), rcp.PartRef(5, 5, 0.0, 12, 9),
])  # fmt: skip
def test_marker_tracking_follows_the_engine(part):
    """The marker follows the same cells as the engine's query: its vectors equal track_part's."""
    rng = np.random.default_rng(1)
    features = rng.random((12, 4, 10, 13)).astype(np.float32)
    times = np.arange(12, dtype=np.float64)
    query = (
        Box(part.x, part.y, part.x1, part.y1, part.time_seconds)
        if part.is_box
        else Point(part.x, part.y, part.time_seconds)
    )
    expected = track_part(query, features, times, 480, 360, 1, 2)
    centres, vectors = model.track_positions(part, features, times, 480, 360, 1, 2)
    np.testing.assert_array_equal(vectors, expected)
    chunked = model.track_positions(part, features, times, 480, 360, 1, 2, chunk_frames=5)  # chunk edges
    np.testing.assert_array_equal(chunked[0], centres)
    np.testing.assert_array_equal(chunked[1], expected)
    anchor = int(part.time_seconds)
    click = ((part.x + part.x1) / 2, (part.y + part.y1) / 2) if part.is_box else (part.x, part.y)
    assert tuple(centres[anchor]) == pytest.approx(click, abs=1e-3)
    assert centres.shape == (12, 2) and (centres >= 0).all() and (centres[:, 0] < 480).all()


def test_marker_moves_with_a_moving_feature():
    """A bright cell moving right one cell per frame: the marker moves right with it."""
    features = np.zeros((6, 3, 8, 8), dtype=np.float32)
    features[:, 0] = 0.1
    for i in range(6):
        features[i, 1, 4, 1 + i] = 1.0
    times = np.arange(6, dtype=np.float64)
    centres, _ = model.track_positions(rcp.PartRef(1.5 * 10, 4.5 * 10, 0.0), features, times, 80, 80, 1, 0)
    assert list(np.round(centres[:, 0]).astype(int)) == [15, 25, 35, 45, 55, 65]
    assert model.position_at(centres, times, 2.5) == pytest.approx((40.0, 45.0))


def test_heat_rgba_is_normalised_per_frame():
    faint = np.full((10, 13), 0.44, dtype=np.float32)
    faint[2:5, 3:6] = 0.52  # a performer, as faint as the shipped model's maps
    faint[5, 11] = 0.59  # one outlier cell
    rgba = model.heat_rgba(faint, 480, 360)
    assert rgba.shape == (360, 480, 4) and rgba.dtype == np.uint8
    inside, outside = rgba[130, 165], rgba[300, 60]
    assert inside[3] >= 0.8 * 255 and outside[3] <= 0.4 * 255  # opaque on the performer, see-through elsewhere
    assert int(inside[:3].sum()) > int(outside[:3].sum()) + 300  # bright on the performer, dark elsewhere
    # the same map shifted and scaled looks the same (per-frame normalisation)
    np.testing.assert_array_equal(model.heat_rgba(faint * 0.5 + 0.1, 480, 360), rgba)
    flat = model.heat_rgba(np.full((4, 4), 0.5, np.float32), 40, 40)
    assert (flat[..., 3] == round(model.HEAT_ALPHA[0] * 255)).all()


def test_viewport_round_trip_and_letterbox():
    view = model.Viewport.fit(800, 400, 480, 360)
    assert view.height == 400 and view.width == pytest.approx(533.33, abs=0.01)
    assert view.to_video(10, 200, 480, 360) is None  # the black bar
    x, y = view.to_video(*view.to_widget(136, 88, 480, 360), 480, 360)
    assert (x, y) == pytest.approx((136, 88))


def test_shipped_example_sidecar_performers_are_where_the_examples_say():
    """The tests click the duet's performers from its sidecar: check the sidecar's boxes hold the README's points."""
    sidecar = json.loads((REPO / "examples" / "duet.json").read_text())
    boxes = {p["name"]: p["boxes"][120] for p in sidecar["performers"]}  # 5 s at 24 fps
    for name, (x, y) in {"long-drum": (136, 88), "accordion": (365, 186)}.items():
        x0, y0, x1, y1 = boxes[name]
        assert x0 <= x <= x1 and y0 <= y <= y1


# ---------------------------------------------------------------------------------------------------
# The live preview on the example duet (the shipped model)


@pytest.fixture(scope="module")
def duet_session(tmp_path_factory):
    from host_bridge.app.engine import PreviewSession
    from pixelsep_plugin.api import Separator

    separator = Separator(threads=2, cache_root=tmp_path_factory.mktemp("app-cache"))
    analysis, _ = separator.analyze(DUET)
    recipe = rcp.new_recipe(rcp.clip_ref(DUET, sha256=separator.clip_sha256(DUET)), separator.package.model_id,
                            separator.package.checksum)  # fmt: skip
    return separator, analysis, recipe, PreviewSession(separator, analysis, recipe, chunk_seconds=0.5)


def test_preview_renders_the_playhead_first_and_equals_a_whole_render(duet_session):
    separator, analysis, recipe, session = duet_session
    editor = model.Editor(recipe)
    editor.click(136, 88, 5.0)
    editor.click(365, 186, 5.0)
    assert session.set_recipe(editor.recipe) is True
    session.set_playhead(5.2)
    first = session.render_next()
    assert first is not None and first.index == 10  # 5.0-5.5 s
    playhead = int(5.2 * session.sample_rate)
    assert session.is_rendered(playhead, playhead + 100) and not session.is_rendered(0, 100)
    second = session.render_next()
    assert second.index == 11
    # the chunks equal the same samples of the engine's whole render
    stems, _ = separator.separate(analysis, rcp.engine_sources(editor.recipe)).render()
    a = 10 * session.chunk_samples
    identity = session.remix(a, 2 * session.chunk_samples)
    np.testing.assert_array_equal(identity, analysis.read_audio(a, a + 2 * session.chunk_samples))
    editor.set_gain("source1", -6.0)
    editor.set_mute("source2", True)
    assert session.set_recipe(editor.recipe) is False  # gains only: nothing to render again
    gains, rest = rcp.linear_gains(editor.recipe)
    original = analysis.read_audio(a, a + 2 * session.chunk_samples)
    part = stems[:, :, a : a + 2 * session.chunk_samples]
    expected = rest * (original - part.sum(axis=0)) + gains[0] * part[0] + gains[1] * part[1]
    np.testing.assert_allclose(session.remix(a, 2 * session.chunk_samples), expected, atol=2e-5)
    # where nothing is rendered yet the clip's own sound plays
    np.testing.assert_array_equal(session.remix(0, 500), analysis.read_audio(0, 500))
    # past the end: zeros
    tail = session.remix(session.num_samples - 10, 30)
    assert tail.shape == (2, 30) and not tail[:, 10:].any()


def test_preview_drops_stale_chunks_and_bounds_its_cache(duet_session):
    from host_bridge.app.engine import PreviewSession

    separator, analysis, recipe, _ = duet_session
    session = PreviewSession(separator, analysis, recipe, chunk_seconds=0.5, ahead_seconds=1.0, behind_seconds=0.5,
                             max_cached_seconds=1.0)  # fmt: skip
    assert session.pending_chunk() is None  # no source: nothing to render
    editor = model.Editor(recipe)
    editor.click(136, 88, 5.0)
    session.set_recipe(editor.recipe)
    rendered = []
    while (done := session.render_next()) is not None:
        rendered.append(done.index)
    assert rendered == [0, 1, 2] and session.max_chunks == 5
    session.set_playhead(9.9)
    while session.render_next() is not None:
        pass
    assert len(session._chunks) <= session.max_chunks
    editor.click(365, 186, 5.0)
    session.set_recipe(editor.recipe)  # new stems: every chunk is stale
    assert not session.is_rendered(int(9.9 * session.sample_rate), int(9.9 * session.sample_rate) + 1)


def test_cli_app_without_pyqt6_says_how_to_install(monkeypatch, capsys):
    """`pixelsep app` imports PyQt6 only when it runs; without it, one line says how to install the extra."""
    import sys

    from host_bridge.cli.main import main

    monkeypatch.setitem(sys.modules, "PyQt6", None)  # import PyQt6 -> ImportError
    monkeypatch.setitem(sys.modules, "PyQt6.QtWidgets", None)
    monkeypatch.setitem(sys.modules, "PyQt6.QtMultimedia", None)
    assert main(["app", str(DUET)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'pixelsep[app]'" in err and "libpulse0" in err
    assert main(["app", str(DUET.with_name("missing.mp4"))]) == 1
    assert "not found" in capsys.readouterr().err


def test_cli_parser_does_not_import_qt():
    import subprocess
    import sys

    code = "import sys; from host_bridge.cli.main import get_parser; get_parser().parse_args(['app']); " \
           "sys.exit(any(m.startswith('PyQt6') for m in sys.modules))"  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


@pytest.mark.parametrize("rotation", [0, 90])
def test_frame_reader_shows_the_engines_frames_forward_and_back(tmp_path, rotation):
    """Playing (decoding on), scrubbing back and jumping ahead all give the frame the engine's
    read_frame gives for that time, display-oriented."""
    from host_bridge.app.frames import FrameReader, preview_size
    from pixelsep_plugin import media

    clip = media.make_test_clip(tmp_path / "clip.mp4", 3.0, width=160, height=120, fps=10,
                                rotation_degrees=rotation, keyframe_interval=10)  # fmt: skip
    reader = FrameReader(clip)
    assert reader.size == ((160, 120) if rotation == 0 else (120, 160))
    for seconds in (0.0, 0.05, 0.1, 0.35, 1.0, 0.2, 2.95, 2.5, 1.45):
        np.testing.assert_array_equal(reader.frame_at(seconds), media.read_frame(clip, seconds), err_msg=str(seconds))
    reader.close()
    assert preview_size(1920, 1080) == (960, 540) and preview_size(480, 360) == (480, 360)


def test_fit_channels_downmixes_for_smaller_outputs():
    pytest.importorskip("PyQt6.QtMultimedia", reason="the app extra")
    from host_bridge.app.audio import fit_channels

    block = np.arange(12, dtype=np.float32).reshape(6, 2)  # 5.1, two samples
    assert fit_channels(block, 6) is block
    np.testing.assert_array_equal(fit_channels(block, 2), [[5, 6], [5, 6]])
    np.testing.assert_array_equal(fit_channels(block[:1], 2), [[0, 1], [0, 1]])
