import json
import shutil

import numpy as np
import pytest
import torch

from pixelsep_plugin.config import get_model_config
from pixelsep_plugin.errors import ModelError
from pixelsep_plugin.export.package import load_torch_model, write_package
from pixelsep_plugin.modelstore import load_package
from pixelsep_plugin.nets import build_pixelplayer
from pixelsep_plugin.runtime.sessions import OnnxNets


@pytest.fixture(scope="module")
def trained_like(tmp_path_factory):
    """A small model whose BatchNorm statistics and synthesizer are not at their initial values."""
    cfg = get_model_config("small")
    model = build_pixelplayer(cfg, seed=1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model.video_net(torch.rand(2, 3, 160, 160))
            model.audio_net(torch.randn(2, 1, 256, 128) * 3 - 5)
        model.synthesizer.alpha.mul_(1.7)
        model.synthesizer.beta.fill_(-0.3)
    model.eval()
    path = write_package(model, tmp_path_factory.mktemp("pkg") / "m", "m-test", "1", trained=True)
    return model, path


def test_torch_and_onnx_runtime_agree_on_dynamic_shapes(trained_like):
    model, path = trained_like
    nets = OnnxNets(load_package(path), threads=2)
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 160, 288), (3, 3, 96, 64)]:
        frames = rng.random(shape, dtype=np.float32)
        with torch.no_grad():
            ref = model.video_net(torch.from_numpy(frames)).numpy()
        out = nets.video(frames)
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-4)
    for columns in (256, 64, 512):
        spec = (rng.standard_normal((2, 1, 256, columns)) * 3 - 5).astype(np.float32)
        with torch.no_grad():
            ref = model.audio_net(torch.from_numpy(spec)).numpy()
        out = nets.audio(spec)
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max())))


def test_package_round_trip(trained_like):
    model, path = trained_like
    package = load_package(path)
    assert package.model_id == "m-test" and package.trained
    assert package.config == model.cfg
    np.testing.assert_allclose(package.alpha, model.synthesizer.alpha.detach().numpy())
    assert package.beta == pytest.approx(-0.3)
    again = load_torch_model(path)
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        assert torch.equal(again.video_net(x), model.video_net(x))
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"video.onnx", "audio.onnx", "weights.safetensors", "CARD.md"}


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_damaged_packages_are_refused(trained_like, tmp_path, damage):
    _, path = trained_like
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    target = copy / "audio.onnx"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x10
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    elif damage == "delete":
        target.unlink()
    else:
        (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError) as info:
        load_package(copy)
    assert "\n" not in str(info.value)
    assert ("audio.onnx" in str(info.value)) or damage == "manifest"


def test_a_folder_without_a_manifest_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="no manifest.json"):
        load_package(tmp_path)
