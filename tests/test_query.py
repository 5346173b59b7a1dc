import numpy as np
import pytest

from host_bridge.cli.sources import SourceSpec, build_sources
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Box, Point, check_part, parse_box, parse_point, track_part, window_vectors


def test_parse_points_and_boxes():
    assert parse_point("640,360") == Point(640, 360, None)
    assert parse_point("1.5,2@3.25") == Point(1.5, 2, 3.25)
    assert parse_box("10,20,30,40@1") == Box(10, 20, 30, 40, 1.0)
    for bad in ["640", "a,b", "1,2@x", "1,2,3", "nan,1"]:
        with pytest.raises(InputError, match="write it like"):
            parse_point(bad)
    with pytest.raises(InputError, match="empty"):
        parse_box("30,20,10,40")


@pytest.mark.parametrize(
    "part,message",
    [
        (Point(1920, 10), "outside the 1920x1080 frame"),
        (Point(-1, 10), "outside"),
        (Point(10, 1080), "outside"),
        (Box(0, 0, 1921, 10), "outside"),
        (Point(10, 10, 60.5), "outside the clip"),
        (Point(10, 10, -1), "outside the clip"),
    ],
)
def test_parts_outside_the_frame_or_clip_are_refused(part, message):
    with pytest.raises(InputError, match=message):
        check_part(part, 1920, 1080, 60.0)
    check_part(Point(1919.5, 1079, 60.0), 1920, 1080, 60.0)
    check_part(Box(0, 0, 1920, 1080), 1920, 1080, 60.0)


def _moving_blob_features(num_frames=6, k=4, h=6, w=10):
    """A distinctive K-vector that moves one cell right per frame over a uniform background."""
    features = np.full((num_frames, k, h, w), 0.1, dtype=np.float32)
    features[:, 0] = 0.9  # background: component 0
    for i in range(num_frames):
        features[i, :, 2, 2 + i] = [0.05, 0.9, 0.2, 0.0]  # the performer: component 1
    return features


def test_a_point_follows_a_moving_performer():
    features = _moving_blob_features()
    times = np.arange(6, dtype=np.float64)
    # click the performer at t=2 (cell (2, 4)) in a 1000x600 video: cells are 100 px wide
    vectors = track_part(Point(450, 250, 2.0), features, times, 1000, 600, point_reach_cells=0)
    performer = np.array([0.05, 0.9, 0.2, 0.0], dtype=np.float32)
    np.testing.assert_allclose(vectors, np.tile(performer, (6, 1)), atol=1e-6)
    # without tracking (radius 0) it would stay on background in the other frames
    still = track_part(Point(450, 250, 2.0), features, times, 1000, 600, search_radius_cells=0, point_reach_cells=0)
    assert np.allclose(still[2], performer) and still[0, 0] == pytest.approx(0.9)


def test_a_point_max_pools_the_cells_within_its_reach():
    features = _moving_blob_features()
    times = np.arange(6, dtype=np.float64)
    # at t=2 the performer is in cell (2, 4); the click lands one cell to its right, (2, 5)
    near = track_part(Point(550, 250, 2.0), features, times, 1000, 600, search_radius_cells=0, point_reach_cells=1)
    np.testing.assert_allclose(near[2], [0.9, 0.9, 0.2, 0.1], atol=1e-6)  # background and performer, pooled
    alone = track_part(Point(550, 250, 2.0), features, times, 1000, 600, search_radius_cells=0, point_reach_cells=0)
    np.testing.assert_allclose(alone[2], [0.9, 0.1, 0.1, 0.1], atol=1e-6)  # the clicked cell only: background
    # at the frame's corner the region is clipped to the frame
    corner = track_part(Point(0, 0, 2.0), features, times, 1000, 600, point_reach_cells=2)
    np.testing.assert_allclose(corner[2], [0.9, 0.1, 0.1, 0.1], atol=1e-6)


def test_a_box_max_pools_its_cells_and_follows():
    features = _moving_blob_features()
    times = np.arange(6, dtype=np.float64)
    vectors = track_part(Box(200, 200, 300, 300, 0.0), features, times, 1000, 600)
    assert vectors.shape == (6, 4)
    assert np.all(vectors[:, 1] == pytest.approx(0.9))


def test_window_vectors_max_pool_the_frames_inside():
    frame_vectors = np.array([[1, 0], [0, 2], [3, 0], [0, 0]], dtype=np.float32)
    times = np.array([0.0, 1.0, 2.0, 3.0])
    # windows of 10 columns of 0.1 s: [0, 1) and [1.5, 2.5) and [3.5, 4.5) (no frame: nearest)
    out = window_vectors(frame_vectors, times, np.array([0, 15, 35]), 10, 0.1)
    np.testing.assert_allclose(out, [[1, 0], [3, 0], [0, 0]])


def test_cli_sources_group_by_name_and_keep_order():
    specs = [
        SourceSpec("point", "10,10"),
        SourceSpec("name", "violin"),
        SourceSpec("box", "0,0,5,5@2"),
        SourceSpec("point", "20,20@3"),
        SourceSpec("name", "violin"),
    ]
    sources = build_sources(specs)
    assert [s.name for s in sources] == ["violin", "source1"]
    assert sources[0].parts == (Point(10, 10), Point(20, 20, 3.0))
    with pytest.raises(InputError, match="must follow"):
        build_sources([SourceSpec("name", "x")])
    with pytest.raises(InputError, match="no source"):
        build_sources([])
    with pytest.raises(InputError, match="reserved"):
        build_sources([SourceSpec("point", "1,1"), SourceSpec("name", "residual")])
