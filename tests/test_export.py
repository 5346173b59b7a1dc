"""ONNX export and model packages: torch/onnxruntime parity, checksums, round trips."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pixelsep_plugin.config import get_model_config
from pixelsep_plugin.errors import ModelError
from pixelsep_plugin.export import build_untrained as build_untrained_cli
from pixelsep_plugin.export import export_onnx, load_torch_model, write_package
from pixelsep_plugin.modelstore import ModelPackage, load_package
from pixelsep_plugin.nets import build_pixelplayer

FILES = {"video.onnx", "audio.onnx", "weights.safetensors", "CARD.md"}


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def trained_like(tmp_path_factory):
    """A small model whose BatchNorm statistics and synthesizer are not at their initial values, as a package."""
    cfg = get_model_config("small")
    model = build_pixelplayer(cfg, seed=1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model.video_net(torch.rand(2, 3, 96, 128))
            model.audio_net(torch.randn(2, 1, 256, 128) * 3 - 5)
        model.synthesizer.alpha.mul_(1.7)
        model.synthesizer.beta.fill_(-0.3)
    model.eval()
    path = write_package(
        model, cfg, tmp_path_factory.mktemp("pkg") / "m", "m-test", "1", trained=True, metrics={"sdr": 1.5}
    )
    return model, path


def test_torch_and_onnxruntime_agree_on_dynamic_shapes(trained_like):
    model, path = trained_like
    assert model.training is False  # export left eval mode alone
    video, audio = _session(path / "video.onnx"), _session(path / "audio.onnx")
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 160, 288), (3, 3, 90, 64)]:
        frames = rng.random(shape, dtype=np.float32)
        with torch.no_grad():
            ref = model.video_net(torch.from_numpy(frames)).numpy()
        (out,) = video.run(None, {"frames": frames})
        assert out.shape == ref.shape == (shape[0], 16, -(-shape[2] // 16), -(-shape[3] // 16))
        np.testing.assert_allclose(out, ref, atol=1e-4)
    for n, columns in ((1, 256), (2, 64), (1, 512)):
        spec = (rng.standard_normal((n, 1, 256, columns)) * 3 - 5).astype(np.float32)
        with torch.no_grad():
            ref = model.audio_net(torch.from_numpy(spec)).numpy()
        (out,) = audio.run(None, {"log_magnitude": spec})
        assert out.shape == ref.shape == (n, 16, 256, columns)
        np.testing.assert_allclose(out, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max())))


def test_onnx_graphs_are_self_contained_with_named_dynamic_axes(trained_like):
    _, path = trained_like
    assert {p.name for p in path.iterdir()} == FILES | {"manifest.json"}
    for name, inputs, outputs in [
        ("video.onnx", ["batch", 3, "height", "width"], ["batch", 16, "rows", "cols"]),
        ("audio.onnx", ["batch", 1, 256, "columns"], ["batch", 16, 256, "columns"]),
    ]:
        graph = onnx.load(str(path / name), load_external_data=False).graph
        assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in graph.initializer)
        dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*graph.input, *graph.output)]
        assert dims == [inputs, outputs]


def test_export_is_deterministic_and_restores_training_mode(tmp_path):
    cfg = get_model_config("small")
    model = build_pixelplayer(cfg, seed=5).train()
    first = export_onnx(model, cfg, tmp_path / "a")
    assert model.training
    second = export_onnx(build_pixelplayer(cfg, seed=5), cfg, tmp_path / "b")
    for name in ("video.onnx", "audio.onnx"):
        assert first[name].read_bytes() == second[name].read_bytes(), name
    with pytest.raises(ValueError, match="config"):
        export_onnx(model, get_model_config("paper"), tmp_path / "c")


def test_package_round_trip(trained_like):
    model, path = trained_like
    package = load_package(path)
    assert isinstance(package, ModelPackage)
    assert package.model_id == "m-test" and package.version == "1" and package.trained
    assert package.config == model.cfg
    assert package.video_onnx == path / "video.onnx" and package.audio_onnx == path / "audio.onnx"
    assert package.alpha.dtype == np.float32 and package.alpha.shape == (16,)
    np.testing.assert_allclose(package.alpha, model.synthesizer.alpha.detach().numpy())
    assert package.beta == pytest.approx(-0.3)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "pixelsep-model" and manifest["format_version"] == 1
    assert set(manifest["files"]) == FILES
    assert manifest["metrics"] == {"sdr": 1.5} and {"torch", "onnx", "python"} <= set(manifest["software"])
    assert package.checksum == hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()
    assert load_package(path, verify=False).checksum == package.checksum


def test_load_torch_model_gives_identical_outputs(trained_like):
    model, path = trained_like
    again = load_torch_model(path)
    assert not again.training
    frames, spec = torch.rand(1, 3, 64, 96), torch.randn(1, 1, 256, 64)
    with torch.no_grad():
        assert torch.equal(again.video_net(frames), model.video_net(frames))
        assert torch.equal(again.audio_net(spec), model.audio_net(spec))
    for (name, a), b in zip(again.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def _damaged_copy(path: Path, tmp_path: Path, damage: str) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    target = copy / "audio.onnx"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    elif damage == "delete":
        target.unlink()
    elif damage == "manifest":
        (copy / "manifest.json").write_text("{not json")
    elif damage == "escape":
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["files"]["../audio.onnx"] = manifest["files"]["audio.onnx"]
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize(
    "damage,message",
    [
        ("flip", r"audio\.onnx fails its checksum \(expected sha256 [0-9a-f]{16}\.\.\., found [0-9a-f]{16}"),
        ("truncate", r"audio\.onnx should be \d+ bytes but is \d+ bytes"),
        ("delete", r"audio\.onnx is missing"),
        ("manifest", r"not a valid pixelsep model manifest"),
        ("escape", r"not a plain file name"),
    ],
)
def test_damaged_packages_are_refused_in_one_line(trained_like, tmp_path, damage, message):
    _, path = trained_like
    copy = _damaged_copy(path, tmp_path, damage)
    with pytest.raises(ModelError, match=message) as info:
        load_package(copy)
    assert "\n" not in str(info.value)
    assert "rebuild or reinstall the model" in str(info.value)
    if damage == "flip":
        load_package(copy, verify=False)  # sizes still match: only the hash finds it
        with pytest.raises(ModelError, match="checksum"):
            load_torch_model(copy)


def test_missing_folder_or_manifest_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_package(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="no manifest.json"):
        load_package(tmp_path)


def test_build_untrained_cli_writes_a_reproducible_random_model(tmp_path, capsys):
    assert build_untrained_cli.main(["--config", "small", "--out", str(tmp_path / "a"), "--seed", "2"]) == 0
    package = load_package(tmp_path / "a")
    assert package.model_id == "small-untrained" and not package.trained and package.config.name == "small"
    card = (tmp_path / "a" / "CARD.md").read_text()
    assert "weights are random" in card and "does not separate anything" in card
    # the same seed writes the same nets; writing over an existing package replaces it
    build_untrained_cli.main(["--config", "small", "--out", str(tmp_path / "a"), "--seed", "2", "--id", "x"])
    again = load_package(tmp_path / "a")
    assert again.model_id == "x"
    for name in FILES - {"CARD.md"}:
        assert again.manifest["files"][name] == package.manifest["files"][name], name
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temporary or old folder left behind
