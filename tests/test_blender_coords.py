"""Preview clicks to movie pixels: each part of Blender's strip placement, by hand, and round trips."""

from __future__ import annotations

import math

import pytest

from host_bridge.blender.coords import StripPlacement, movie_to_view, view_to_movie, visible_quad


def _view(p: StripPlacement, x: float, y: float) -> tuple[float, float]:
    vx, vy = movie_to_view(p, x, y)
    return round(vx, 6), round(vy, 6)


def test_an_untransformed_strip_is_centred_at_its_own_size():
    p = StripPlacement(200, 100)
    assert _view(p, 100, 50) == (0, 0)  # the image centre is the frame centre
    assert _view(p, 0, 0) == (-100, 50)  # top-left: left and up
    assert view_to_movie(p, 44, 26) == pytest.approx((144, 24))


def test_offset_moves_the_image():
    p = StripPlacement(200, 100, offset_x=37, offset_y=-21)
    assert _view(p, 100, 50) == (37, -21)
    assert view_to_movie(p, 37 - 100, -21 + 50) == pytest.approx((0, 0))


def test_scale_about_the_centre():
    p = StripPlacement(200, 100, scale_x=1.5, scale_y=0.5)
    assert _view(p, 0, 0) == (-150, 25)
    assert view_to_movie(p, 150, -25) == pytest.approx((200, 100))


def test_rotation_is_counter_clockwise_about_the_pivot():
    p = StripPlacement(200, 100, rotation=math.pi / 2)
    assert _view(p, 200, 50) == pytest.approx((0, 100))  # the right edge's middle turns up
    corner = StripPlacement(200, 100, rotation=math.pi / 2, origin_x=0.0, origin_y=0.0)
    # about the bottom-left corner (-100, -50): the top-left corner (-100, 50) turns to (-200, -50)
    assert _view(corner, 0, 0) == pytest.approx((-200, -50))
    assert _view(corner, 0, 100) == pytest.approx((-100, -50))  # the pivot stays


def test_origin_is_the_pivot_of_scale():
    p = StripPlacement(200, 100, scale_x=2, scale_y=2, origin_x=1.0, origin_y=1.0)
    assert _view(p, 200, 0) == (100, 50)  # the top-right corner is the pivot: it stays
    assert _view(p, 0, 100) == (-300, -150)


def test_flips_mirror_about_the_frame_centre():
    p = StripPlacement(200, 100, offset_x=30, offset_y=10, flip_x=True)
    assert _view(p, 100, 50) == (-30, 10)
    q = StripPlacement(200, 100, offset_x=30, offset_y=10, flip_y=True)
    assert _view(q, 100, 50) == (30, -10)
    assert view_to_movie(p, -30 - 44, 10 + 26) == pytest.approx((144, 24))


def test_pixel_aspect_stretches_the_preview_x():
    p = StripPlacement(200, 100, pixel_aspect=2.0)
    assert _view(p, 200, 50) == (200, 0)
    assert view_to_movie(p, 200, 0) == pytest.approx((200, 50))


def test_crop_hides_borders_without_moving_the_rest():
    p = StripPlacement(200, 100, crop_left=20, crop_right=10, crop_bottom=5, crop_top=30)
    assert _view(p, 100, 50) == (0, 0)
    assert view_to_movie(p, 0, 0) == pytest.approx((100, 50))
    assert view_to_movie(p, -90, 0) is None  # x = 10 < 20: cropped on the left
    assert view_to_movie(p, 95, 0) is None  # x = 195 > 190
    assert view_to_movie(p, 0, 25) is None  # y = 25 < 30: cropped at the top
    assert view_to_movie(p, 0, -48) is None  # y = 98 > 95
    assert view_to_movie(p, -80, 20) == pytest.approx((20, 30))  # the visible corner itself


def test_a_click_beside_the_image_misses():
    p = StripPlacement(200, 100, scale_x=0.5, scale_y=0.5)
    assert view_to_movie(p, 60, 0) is None
    assert view_to_movie(p, 40, 0) == pytest.approx((180, 50))


def test_the_engine_frame_size_scales_the_point():
    p = StripPlacement(200, 100)
    assert view_to_movie(p, 0, 0, frame_size=(400, 200)) == pytest.approx((200, 100))


@pytest.mark.parametrize(
    "placement",
    [
        StripPlacement(200, 100, offset_x=-40, offset_y=25, scale_x=0.8, scale_y=1.2, rotation=1.1, origin_x=0.7,
                       origin_y=0.3, flip_x=True, flip_y=True, pixel_aspect=1.5),  # fmt: skip
        StripPlacement(1920, 1080, scale_x=-1.0, rotation=-2.5, origin_x=0.1, origin_y=0.95),
        StripPlacement(640, 360, offset_x=300, scale_x=0.25, scale_y=0.25, rotation=math.pi),
    ],
)
def test_round_trip(placement):
    for x, y in [(0.0, 0.0), (13.5, 7.25), (placement.image_width * 0.6, placement.image_height * 0.9)]:
        assert view_to_movie(placement, *movie_to_view(placement, x, y)) == pytest.approx((x, y), abs=1e-6)


def test_bad_placements_are_refused():
    with pytest.raises(ValueError, match="scale 0"):
        StripPlacement(200, 100, scale_x=0)
    with pytest.raises(ValueError, match="image size"):
        StripPlacement(0, 100)


def test_the_visible_quad_follows_crop_and_transform():
    p = StripPlacement(200, 100, crop_left=20, crop_top=30, offset_x=10)
    quad = visible_quad(p)
    assert [corner for corner, _ in quad] == [(-70, -50), (110, -50), (110, 20), (-70, 20)]
    assert [uv for _, uv in quad] == [(0.1, 0.0), (1.0, 0.0), (1.0, 0.7), (0.1, 0.7)]
    turned = visible_quad(StripPlacement(200, 100, rotation=math.pi))
    assert turned[0][0] == pytest.approx((100, 50))  # bottom-left ends top-right
