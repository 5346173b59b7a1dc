"""Lazy, chunked tracking equals tracking every frame at once, whatever the order of the requests."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from pixelsep_plugin.runtime.query import Box, PartTracker, Point, track_part, track_together


def _drifting_features(num_frames: int = 60, k: int = 6, h: int = 8, w: int = 11, seed: int = 0) -> np.ndarray:
    """Float16 features with a distinctive blob that wanders one cell at a time over noise."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(0.0, 0.4, (num_frames, k, h, w)).astype(np.float32)
    r, c = h // 2, w // 2
    blob = rng.uniform(0.5, 1.0, k)
    for i in range(num_frames):
        r = int(np.clip(r + rng.integers(-1, 2), 0, h - 1))
        c = int(np.clip(c + rng.integers(-1, 2), 0, w - 1))
        features[i, :, r, c] = blob
    return features.astype(np.float16)


@pytest.mark.parametrize("part", [Point(500, 400, 20.0), Point(0, 0, 59.0), Box(300, 200, 700, 500, 0.0)])
@pytest.mark.parametrize("chunk_frames", [1, 7, 512])
def test_lazy_tracking_equals_tracking_all_frames(part, chunk_frames):
    features = _drifting_features()
    times = np.arange(features.shape[0], dtype=np.float64) * 0.5
    expected = track_part(part, features, times, 1100, 800)
    tracker = PartTracker(part, features, times, 1100, 800, chunk_frames=chunk_frames)
    # far from the anchor first, then around it, then everything
    np.testing.assert_array_equal(tracker.vectors(50, 55), expected[50:55])
    assert tracker.tracked_frames < features.shape[0] or tracker.anchor_frame >= 50
    np.testing.assert_array_equal(tracker.vectors(3, 9), expected[3:9])
    np.testing.assert_array_equal(tracker.vectors(0, features.shape[0]), expected)


def test_parts_tracked_together_share_pooled_chunks_and_agree():
    features = _drifting_features(seed=3)
    times = np.arange(features.shape[0], dtype=np.float64)
    parts = [Point(100, 100, 5.0), Point(900, 700, 40.0), Box(0, 0, 400, 300, 59.0)]
    cache: OrderedDict = OrderedDict()
    trackers = [PartTracker(p, features, times, 1100, 800, chunk_frames=8, pooled_cache=cache) for p in parts]
    track_together(trackers, 20, 30)
    assert 0 < len(cache) <= 4
    for part, tracker in zip(parts, trackers, strict=True):
        np.testing.assert_array_equal(tracker.vectors(0, 60), track_part(part, features, times, 1100, 800))


def test_a_window_without_frames_takes_the_nearest_one():
    features = _drifting_features(num_frames=5)
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    tracker = PartTracker(Point(500, 400, 2.0), features, times, 1100, 800)
    vectors = track_part(Point(500, 400, 2.0), features, times, 1100, 800)
    np.testing.assert_array_equal(tracker.window_vector(0.5, 2.5), vectors[1:3].max(axis=0))
    np.testing.assert_array_equal(tracker.window_vector(3.2, 3.4), vectors[3])  # nearest to 3.3: frame 3
    np.testing.assert_array_equal(tracker.window_vector(3.4, 3.6), vectors[3])  # a tie: the first
    np.testing.assert_array_equal(tracker.window_vector(9.0, 9.5), vectors[4])
