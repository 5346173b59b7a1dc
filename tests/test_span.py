"""Rendering a span equals the same samples of the whole render, at any place and clip length."""

from __future__ import annotations

import numpy as np
import pytest

from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Box, Point, Source


@pytest.fixture(scope="module", params=[3.0, 7.3])
def rendered(request, separator, clip_factory):
    seconds = request.param
    clip = clip_factory(f"span-{seconds}.mp4", seconds=seconds, channel_layout="stereo", sample_rate=44100)
    analysis, _ = separator.analyze(clip)
    sources = [Source("left", (Point(40, 60),)), Source("right", (Point(120, 60),))]
    separation = separator.separate(analysis, sources)
    stems, residual = separation.render()
    return separation, stems, residual


@pytest.mark.parametrize(
    "fraction_start, fraction_stop",
    [(0.0, 0.25), (0.31, 0.62), (0.8, 1.0), (0.0, 1.0), (0.5, 0.5001), (0.123, 0.877)],
)
def test_span_equals_the_whole_render_sliced(rendered, fraction_start, fraction_stop):
    separation, stems, residual = rendered
    length = separation.num_samples
    a = int(fraction_start * length)
    b = max(a + 1, int(fraction_stop * length))
    block = separation.render_samples(a, b)
    assert block.sample_start == a
    assert block.stems.shape == stems[..., a:b].shape
    np.testing.assert_allclose(block.stems, stems[..., a:b], rtol=0, atol=1e-7)
    np.testing.assert_allclose(block.residual, residual[:, a:b], rtol=0, atol=1e-7)
    assert separation.render_samples(a, b, residual=False).residual is None


def test_span_in_seconds_and_its_limits(rendered):
    separation, stems, _ = rendered
    rate = separation.sample_rate
    block = separation.render_span(1.0, 2.5)
    assert block.sample_start == rate and block.stems.shape[-1] == int(1.5 * rate)
    np.testing.assert_allclose(block.stems, stems[..., rate : rate + int(1.5 * rate)], rtol=0, atol=1e-7)
    for threads in (1, 3):  # on one or three worker threads: the same samples
        np.testing.assert_array_equal(separation.render_span(1.0, 2.5, threads=threads).stems, block.stems)
    tail = separation.render_span(1.0, 1e6)  # clipped to the clip's end
    assert tail.sample_start + tail.stems.shape[-1] == separation.num_samples
    with pytest.raises(InputError):
        separation.render_span(2.0, 1.0)
    with pytest.raises(InputError):
        separation.render_span(1e5, 1e6)
    with pytest.raises(InputError):
        separation.render_samples(0, separation.num_samples + 1)


def test_cli_span_writes_only_that_span(small_model, clip_factory, tmp_path, capsys):
    from host_bridge.cli.main import main
    from pixelsep_plugin import media

    clip = clip_factory("span-cli.mp4", seconds=4.0, sample_rate=48000, channel_layout="stereo")
    common = [
        "--at",
        "40,60",
        "--model",
        str(small_model),
        "--cache-dir",
        str(tmp_path / "c"),
        "-q",
        "--format",
        "flac",
    ]
    assert main(["separate", str(clip), *common, "-o", str(tmp_path / "whole")]) == 0
    assert main(["separate", str(clip), *common, "-o", str(tmp_path / "span"), "--span", "1.25:3"]) == 0
    capsys.readouterr()
    for name in ("source1", "residual"):
        whole, _ = media.read_audio(tmp_path / "whole" / f"span-cli.{name}.flac")
        part, rate = media.read_audio(tmp_path / "span" / f"span-cli.{name}.flac")
        assert rate == 48000 and part.shape == (2, 84000)
        np.testing.assert_allclose(part, whole[:, 60000:144000], atol=1e-6)
    for bad in ("3:1", "x:2", "-1:2"):
        with pytest.raises(SystemExit):
            main(["separate", str(clip), *common, "-o", str(tmp_path / "bad"), "--span", bad])
    assert "START:END" in capsys.readouterr().err
    assert main(["separate", str(clip), *common, "-o", str(tmp_path / "bad"), "--span", "100:200"]) != 0
    assert "outside the clip" in capsys.readouterr().err


@pytest.fixture(scope="module")
def moving_clicks(separator, clip_factory):
    """A clip with parts clicked at different times (a point late, a box early, one source of two parts)."""
    clip = clip_factory("span-clicks.mp4", seconds=16.0, channel_layout="stereo", sample_rate=44100)
    analysis, _ = separator.analyze(clip)
    sources = [
        Source("late", (Point(40, 60, 15.5),)),
        Source("two", (Box(90, 30, 150, 90, 0.5), Point(120, 100, 8.0))),
    ]
    whole_stems, whole_residual = separator.separate(analysis, sources).render()
    return separator, analysis, sources, whole_stems, whole_residual


def test_a_span_far_from_the_clicks_equals_the_whole_render(moving_clicks):
    separator, analysis, sources, stems, residual = moving_clicks
    plan = analysis.plan
    assert plan.num_windows >= 3
    rate = analysis.sample_rate
    hop_columns = plan.window - plan.overlap
    boundary = float(plan.starts[1] + plan.overlap) * analysis.column_seconds  # where window 0 ends
    spans = [
        (0.0, 0.7),  # the start, far from the late click
        (boundary - 0.05, boundary + 0.05),  # across the end of a window
        (
            float(plan.starts[2]) * analysis.column_seconds,
            float(plan.starts[2] + hop_columns) * analysis.column_seconds,
        ),
        (analysis.duration_seconds - 0.3, analysis.duration_seconds + 1.0),  # the clip's end
    ]
    for start, end in spans:
        separation = separator.separate(analysis, sources)  # fresh: nothing tracked yet
        block = separation.render_span(start, end)
        a, n = block.sample_start, block.stems.shape[-1]
        np.testing.assert_allclose(block.stems, stems[..., a : a + n], rtol=0, atol=1e-7)
        np.testing.assert_allclose(block.residual, residual[:, a : a + n], rtol=0, atol=1e-7)
        assert a == round(start * rate)
    # tracking went from each click's time to the span only
    separation = separator.separate(analysis, sources)
    separation.render_span(15.0, 15.5)  # near the late click
    late = separation._trackers[0]
    assert 0 < late.tracked_frames < late.num_frames
    tracked = [t.tracked_frames for t in separation._trackers]
    separation.render_span(15.1, 15.4)  # inside what was tracked: nothing more to track
    assert [t.tracked_frames for t in separation._trackers] == tracked
    # and what a span tracked first does not change the whole render
    again, rest = separation.render()
    np.testing.assert_allclose(again, stems, rtol=0, atol=1e-7)
    np.testing.assert_allclose(rest, residual, rtol=0, atol=1e-7)


def test_masks_of_some_columns_equal_those_of_all_columns(moving_clicks):
    separator, analysis, sources, _, _ = moving_clicks
    separation = separator.separate(analysis, sources)
    everything = separation.analysis_masks(0, analysis.num_columns)
    for c0, c1 in [(0, 1), (100, 300), (analysis.num_columns - 7, analysis.num_columns)]:
        np.testing.assert_allclose(separation.analysis_masks(c0, c1), everything[..., c0:c1], rtol=0, atol=1e-6)
