"""Property-based tests (hypothesis): recipe parsing, pixel coordinate mapping, time-base conversions
and the audio front end hold for any input, not just the examples the other tests pick."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from host_bridge.blender.coords import StripPlacement, movie_to_view, view_to_movie
from pixelsep_plugin.audio.stft import Stft
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.recipe import document

GOLDEN = Path(__file__).parent / "golden" / "recipe-v1.json"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)  # fmt: skip


def _paths(value, prefix=()):
    """Every path (tuple of keys/indexes) into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


GOLDEN_DATA = json.loads(GOLDEN.read_text())
GOLDEN_PATHS = list(_paths(GOLDEN_DATA))


def _replaced(data, path, value):
    if not path:
        return value
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@SETTINGS
@given(st.sampled_from(GOLDEN_PATHS), json_values)
def test_any_change_to_a_recipe_is_read_or_refused_in_one_line(path, value):
    text = json.dumps(_replaced(GOLDEN_DATA, path, value))
    try:
        recipe = document.loads(text, Path("/projects/edit"))
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message and len(message) < 400
        return
    # what is accepted is a valid recipe that writes and reads back to itself
    again = document.loads(recipe.to_json(Path("/projects/edit")), Path("/projects/edit"))
    assert again.to_json(Path("/projects/edit")) == recipe.to_json(Path("/projects/edit"))
    assert ".." not in Path(recipe.output.folder).parts and not Path(recipe.output.folder).is_absolute()


@SETTINGS
@given(json_values)
def test_any_json_document_is_read_or_refused_in_one_line(value):
    try:
        document.loads(json.dumps(value), Path("/projects/edit"))
    except InputError as error:
        assert "\n" not in str(error)


@SETTINGS
@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_in_one_line(text):
    try:
        document.loads(text, Path("/projects/edit"))
    except InputError as error:
        assert "\n" not in str(error)


placements = st.builds(
    StripPlacement,
    image_width=st.integers(16, 4096),
    image_height=st.integers(16, 4096),
    offset_x=st.floats(-2000, 2000, allow_subnormal=False),
    offset_y=st.floats(-2000, 2000, allow_subnormal=False),
    scale_x=st.floats(0.05, 8, allow_subnormal=False) | st.floats(-8, -0.05, allow_subnormal=False),
    scale_y=st.floats(0.05, 8, allow_subnormal=False) | st.floats(-8, -0.05, allow_subnormal=False),
    rotation=st.floats(-2 * math.pi, 2 * math.pi, allow_subnormal=False),
    origin_x=st.floats(0, 1, allow_subnormal=False),
    origin_y=st.floats(0, 1, allow_subnormal=False),
    flip_x=st.booleans(),
    flip_y=st.booleans(),
    pixel_aspect=st.floats(0.25, 4, allow_subnormal=False),
)


@SETTINGS
@given(placements, st.floats(0, 1, allow_subnormal=False), st.floats(0, 1, allow_subnormal=False))
def test_a_movie_pixel_maps_to_the_preview_and_back(placement, fx, fy):
    x, y = fx * placement.image_width, fy * placement.image_height
    back = view_to_movie(placement, *movie_to_view(placement, x, y))
    assert back is not None
    scale = max(placement.image_width, placement.image_height, abs(placement.offset_x), abs(placement.offset_y))
    assert abs(back[0] - x) <= 1e-6 * scale and abs(back[1] - y) <= 1e-6 * scale


@SETTINGS
@given(placements, st.floats(-1, 2, allow_subnormal=False), st.floats(-1, 2, allow_subnormal=False))
def test_a_click_outside_the_image_maps_to_nothing(placement, fx, fy):
    assume(not (0 <= fx <= 1 and 0 <= fy <= 1))
    assume(min(abs(fx), abs(fx - 1), abs(fy), abs(fy - 1)) > 1e-6)
    x, y = fx * placement.image_width, fy * placement.image_height
    assert view_to_movie(placement, *movie_to_view(placement, x, y)) is None


stfts = st.sampled_from([(1022, 256), (4096, 1024), (512, 128), (64, 32), (256, 96)])


@SETTINGS
@given(stfts, st.integers(1, 6000), st.data())
def test_any_span_of_the_inverse_stft_equals_the_whole_inverse(sizes, length, data):
    """Time bases: the frames that touch a span of samples are enough to rebuild it exactly."""
    stft = Stft(*sizes)
    rng = np.random.default_rng(length)
    signal = rng.standard_normal(length).astype(np.float32)
    whole_spec = stft(signal)
    assert whole_spec.shape[-1] == stft.num_frames(length)
    whole = stft.inverse(whole_spec, length)
    np.testing.assert_allclose(whole, signal, atol=2e-5 * max(1.0, float(np.abs(signal).max())))
    start = data.draw(st.integers(0, length - 1))
    stop = data.draw(st.integers(start + 1, length))
    j0, j1 = stft.frames_touching(start, stop, length)
    first, end = stft.frame_span(j0, j1)
    frames = stft.frames(signal[max(0, first) : min(length, end)], j0, j1, offset=max(0, first), length=length)
    np.testing.assert_allclose(frames, whole_spec[:, j0:j1], atol=1e-3)
    span = stft.overlap_add(frames, j0, start, stop, length)
    np.testing.assert_allclose(span, whole[start:stop], atol=1e-5)


@SETTINGS
@given(stfts, st.integers(1, 100_000), st.integers(0, 100_000))
def test_frames_touching_are_exactly_the_frames_whose_support_meets_the_span(sizes, length, start):
    stft = Stft(*sizes)
    assume(start < length)
    stop = min(length, start + 1 + start % 5000)
    j0, j1 = stft.frames_touching(start, stop, length)
    half = stft.n_fft // 2
    for j in range(max(0, j0 - 2), min(stft.num_frames(length), j1 + 2)):
        meets = j * stft.hop_length - half < stop and start < j * stft.hop_length - half + stft.n_fft
        assert meets == (j0 <= j < j1)


TINY_MODEL = Path(__file__).parent / "data" / "tiny-model"
MANIFEST_DATA = json.loads((TINY_MODEL / "manifest.json").read_text())
MANIFEST_PATHS = list(_paths(MANIFEST_DATA))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(MANIFEST_PATHS), json_values)
def test_any_change_to_a_model_manifest_is_refused_in_one_line_or_harmless(tmp_path_factory, path, value):
    """A tampered manifest (any field replaced by any JSON value) loads only if the package still checks out."""
    import shutil

    from pixelsep_plugin.errors import ModelError
    from pixelsep_plugin.modelstore import load_package

    folder = tmp_path_factory.mktemp("model")
    for name in ("audio.onnx", "video.onnx", "weights.safetensors", "CARD.md"):
        shutil.copy(TINY_MODEL / name, folder / name)
    changed = _replaced(MANIFEST_DATA, path, value)
    (folder / "manifest.json").write_text(json.dumps(changed))
    try:
        package = load_package(folder)
    except ModelError as error:
        assert "\n" not in str(error) and len(str(error)) < 600
        return
    # accepted: every file it lists still exists with its size and sha256, under a plain name
    for name, entry in package.manifest["files"].items():
        assert Path(name).name == name and (folder / name).stat().st_size == int(entry["bytes"])
