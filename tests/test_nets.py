import numpy as np
import pytest
import torch

from pixelsep_plugin.audio.stft import Stft
from pixelsep_plugin.audio.warp import log_magnitude
from pixelsep_plugin.config import AudioFrontEndConfig, get_model_config, model_config_from_dict
from pixelsep_plugin.errors import ModelError
from pixelsep_plugin.nets import (
    AudioUNet,
    DilatedResNet18,
    Synthesizer,
    TorchFrontEnd,
    VideoNet,
    build_pixelplayer,
    load_imagenet_weights,
    pool_clip,
)

# The key list of the common ImageNet ResNet-18 checkpoint (torchvision's resnet18), without fc.
BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def _imagenet_keys() -> list[str]:
    keys = ["conv1.weight"] + [f"bn1.{b}" for b in BN]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys += [f"{p}.conv1.weight"] + [f"{p}.bn1.{b}" for b in BN]
            keys += [f"{p}.conv2.weight"] + [f"{p}.bn2.{b}" for b in BN]
            if layer > 1 and block == 0:
                keys += [f"{p}.downsample.0.weight"] + [f"{p}.downsample.1.{b}" for b in BN]
    return keys


@pytest.mark.parametrize("name", ["paper", "small"])
@pytest.mark.parametrize("height,width", [(224, 224), (160, 288), (100, 70)])
def test_video_net_shapes(name, height, width):
    cfg = get_model_config(name)
    net = VideoNet(cfg.video_net).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, height, width))
    assert out.shape == (2, cfg.num_components, -(-height // 16), -(-width // 16))
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", ["paper", "small"])
def test_audio_net_shapes(name):
    cfg = get_model_config(name)
    net = AudioUNet(cfg.audio_net).eval()
    m = cfg.audio_net.time_multiple
    for t in (m, 2 * m):
        with torch.no_grad():
            out = net(torch.randn(1, 1, 256, t))
        assert out.shape == (1, cfg.num_components, 256, t)
    with pytest.raises(ValueError, match=f"multiples of {m}"):
        net(torch.randn(1, 1, 256, m + 1))


def test_paper_config_is_the_papers():
    cfg = get_model_config("paper")
    assert cfg.num_components == 32 and cfg.audio_net.num_downs == 7 and cfg.audio_net.base_channels == 64
    assert cfg.video_net.widths == (64, 64, 128, 256, 512) and cfg.video_net.frame_size == 224
    assert cfg.video_net.frames_per_window == 3
    assert model_config_from_dict(cfg.to_dict()) == cfg


def test_resnet_names_match_imagenet_checkpoints_and_load(tmp_path):
    trunk = DilatedResNet18((64, 64, 128, 256, 512))
    assert list(trunk.state_dict()) == _imagenet_keys()
    # a checkpoint as distributed: with fc, saved by torch.save
    source = DilatedResNet18((64, 64, 128, 256, 512))
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in source.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    torch.save(state, tmp_path / "resnet18.pth")
    load_imagenet_weights(trunk, tmp_path / "resnet18.pth")
    assert torch.equal(trunk.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    with pytest.raises(ModelError, match="ImageNet widths"):
        load_imagenet_weights(DilatedResNet18((16, 16, 32, 64, 128)), tmp_path / "resnet18.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ModelError, match="not a ResNet-18"):
        load_imagenet_weights(trunk, tmp_path / "other.pth")


def test_layer4_is_dilated_not_strided():
    trunk = DilatedResNet18((16, 16, 32, 64, 128))
    assert trunk.layer4[0].conv1.stride == (1, 1) and trunk.layer4[1].conv2.dilation == (2, 2)
    assert trunk(torch.rand(1, 3, 224, 224)).shape[-2:] == (14, 14)


def test_synthesizer_known_answer():
    synth = Synthesizer(3)
    with torch.no_grad():
        synth.alpha.copy_(torch.tensor([1.0, 2.0, -1.0]))
        synth.beta.fill_(0.5)
    v = torch.tensor([[1.0, 0.5, 2.0]])
    s = torch.zeros(1, 3, 2, 2)
    s[0, 0], s[0, 1], s[0, 2] = 1.0, 3.0, 0.25
    # 1*1*1 + 2*0.5*3 - 1*2*0.25 + 0.5 = 4.0
    assert torch.allclose(synth(v, s), torch.full((1, 2, 2), 4.0))


def test_pool_clip():
    f = torch.zeros(6, 2, 3, 3)
    f[1, 0, 2, 2] = 0.9
    f[4, 1, 0, 0] = 0.7
    assert torch.allclose(pool_clip(f, 3), torch.tensor([[0.9, 0.0], [0.0, 0.7]]))


def test_torch_front_end_agrees_with_numpy():
    cfg = AudioFrontEndConfig()
    rng = np.random.default_rng(0)
    t = np.arange(3 * cfg.sample_rate) / cfg.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    expected = log_magnitude(np.abs(Stft(cfg.n_fft, cfg.hop_length)(x)), cfg)
    magnitude, log = TorchFrontEnd(cfg)(torch.from_numpy(x)[None])
    log = log[0].numpy()
    assert log.shape == expected.shape
    # float32 FFTs differ in the last bits: compare bins within 40 dB of the peak
    loud = expected > expected.max() - np.log(100.0)
    assert loud.mean() > 0.05
    np.testing.assert_allclose(log[loud], expected[loud], atol=1e-4)
    np.testing.assert_allclose(magnitude[0].numpy(), np.exp(expected), rtol=1e-3, atol=1e-6)


def test_seeded_builds_are_identical():
    cfg = get_model_config("small")
    a, b = build_pixelplayer(cfg, seed=3), build_pixelplayer(cfg, seed=3)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
