import numpy as np
import pytest

from pixelsep_plugin.runtime.chunking import WindowCutter, WindowPlan, blend

PAD = -23.0


@pytest.mark.parametrize("num_columns", [1, 37, 255, 256, 257, 449, 1000, 2585])
@pytest.mark.parametrize("window,overlap", [(256, 64), (256, 0), (128, 96), (64, 63)])
def test_identity_model_blends_back_to_its_input(num_columns, window, overlap):
    """Cut columns into windows as analysis does (streaming), apply an identity 'net', blend: same columns."""
    rng = np.random.default_rng(num_columns)
    columns = rng.standard_normal((3, num_columns)).astype(np.float32)
    cutter = WindowCutter(window, overlap, freq_bins=3, pad_value=PAD)
    windows = {}
    i = 0
    while i < num_columns:  # awkward block sizes, as decoded audio arrives
        n = int(rng.integers(1, 300))
        windows.update(dict(cutter.push(columns[:, i : i + n])))
        i += n
    windows.update(dict(cutter.finish(num_columns)))
    plan = WindowPlan(num_columns, window, overlap)
    assert sorted(windows) == plan.starts.tolist()
    assert all(w.shape == (3, window) for w in windows.values())
    out = blend(plan, lambda k: windows[int(plan.starts[k])])
    np.testing.assert_allclose(out, columns, atol=1e-5)
    if num_columns < window:
        assert np.all(windows[0][:, num_columns:] == PAD)
    # any sub-range blends to the same values
    a, b = num_columns // 3, max(num_columns // 3 + 1, num_columns - 5)
    np.testing.assert_allclose(blend(plan, lambda k: windows[int(plan.starts[k])], a, b), columns[:, a:b], atol=1e-5)


def test_plan_windows_cover_everything_and_end_with_the_clip():
    plan = WindowPlan(1000, 256, 64)
    assert plan.starts.tolist() == [0, 192, 384, 576, 744]
    assert plan.starts[-1] + plan.window == 1000
    assert np.all(plan.weight_sum > 0)
    assert plan.windows_overlapping(190, 200).tolist() == [0, 1]


def test_blending_crossfades_inside_overlaps():
    plan = WindowPlan(448, 256, 64)
    out = blend(plan, lambda k: np.full((1, 256), float(k)))[0]
    assert out[0] == 0 and out[-1] == 1
    middle = out[192:256]
    assert np.all(np.diff(middle) > 0)  # fades from window 0 to window 1
