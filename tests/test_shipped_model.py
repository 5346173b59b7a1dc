"""The shipped default model (models/pixelsep-small) separates the example duet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.api import Separator
from pixelsep_plugin.modelstore.registry import resolve_model
from pixelsep_plugin.runtime.query import Point, Source

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "duet.mp4"


def _sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def test_the_default_model_is_the_trained_package():
    separator = Separator()
    assert resolve_model() == REPO / "models" / "pixelsep-small"
    assert separator.package.trained and separator.package.model_id == "pixelsep-small"
    assert "synthetic world" in (separator.package.path / "CARD.md").read_text()


def test_the_example_duet_separates_at_the_demo_clicks(tmp_path):
    sidecar = json.loads(EXAMPLE.with_suffix(".json").read_text())
    clicks = {"long-drum": Point(136, 88, 5.0), "accordion": Point(365, 186, 5.0)}  # as in `make demo`
    separator = Separator(cache_root=tmp_path)
    analysis, _ = separator.analyze(EXAMPLE)
    sources = [Source(name, (point,)) for name, point in clicks.items()]
    stems, residual = separator.separate(analysis, sources).render()
    mixture, rate = media.read_audio(EXAMPLE)
    assert rate == 44100 and stems.shape[:2] == (2, 2)  # the clip's own rate and channels
    n = mixture.shape[-1]
    np.testing.assert_allclose(stems[..., :n].sum(axis=0) + residual[..., :n], mixture, atol=1e-4)
    for index, performer in enumerate(sidecar["performers"]):
        assert performer["name"] == list(clicks)[index]
        reference, _ = media.read_audio(EXAMPLE.parent / performer["stem"])
        m = min(n, reference.shape[-1])
        ref, est, mix = reference[:, :m].mean(0), stems[index, :, :m].mean(0), mixture[:, :m].mean(0)
        nsdr = _sdr(ref, est) - _sdr(ref, mix)
        assert nsdr > 8.0, f"{performer['name']}: NSDR {nsdr:.1f} dB"
