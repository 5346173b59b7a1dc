"""The torch nets: shapes, checkpoint names, the synthesizer formula and the torch front end."""

import numpy as np
import pytest
import torch

from pixelsep_plugin.audio.stft import Stft
from pixelsep_plugin.audio.warp import log_magnitude
from pixelsep_plugin.config import AudioFrontEndConfig, get_model_config, model_config_from_dict
from pixelsep_plugin.errors import ModelError
from pixelsep_plugin.nets import (
    NET_BUILDERS,
    AudioUNet,
    DilatedResNet18,
    PixelPlayer,
    Synthesizer,
    TorchFrontEnd,
    VideoNet,
    build_pixelplayer,
    load_imagenet_weights,
    pool_clip,
)

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# torchvision's resnet18().state_dict() keys, in order, written out block by block.
TORCHVISION_RESNET18_KEYS = (
    ["conv1.weight"]
    + [f"bn1.{b}" for b in BN]
    + ["layer1.0.conv1.weight"] + [f"layer1.0.bn1.{b}" for b in BN]
    + ["layer1.0.conv2.weight"] + [f"layer1.0.bn2.{b}" for b in BN]
    + ["layer1.1.conv1.weight"] + [f"layer1.1.bn1.{b}" for b in BN]
    + ["layer1.1.conv2.weight"] + [f"layer1.1.bn2.{b}" for b in BN]
    + ["layer2.0.conv1.weight"] + [f"layer2.0.bn1.{b}" for b in BN]
    + ["layer2.0.conv2.weight"] + [f"layer2.0.bn2.{b}" for b in BN]
    + ["layer2.0.downsample.0.weight"] + [f"layer2.0.downsample.1.{b}" for b in BN]
    + ["layer2.1.conv1.weight"] + [f"layer2.1.bn1.{b}" for b in BN]
    + ["layer2.1.conv2.weight"] + [f"layer2.1.bn2.{b}" for b in BN]
    + ["layer3.0.conv1.weight"] + [f"layer3.0.bn1.{b}" for b in BN]
    + ["layer3.0.conv2.weight"] + [f"layer3.0.bn2.{b}" for b in BN]
    + ["layer3.0.downsample.0.weight"] + [f"layer3.0.downsample.1.{b}" for b in BN]
    + ["layer3.1.conv1.weight"] + [f"layer3.1.bn1.{b}" for b in BN]
    + ["layer3.1.conv2.weight"] + [f"layer3.1.bn2.{b}" for b in BN]
    + ["layer4.0.conv1.weight"] + [f"layer4.0.bn1.{b}" for b in BN]
    + ["layer4.0.conv2.weight"] + [f"layer4.0.bn2.{b}" for b in BN]
    + ["layer4.0.downsample.0.weight"] + [f"layer4.0.downsample.1.{b}" for b in BN]
    + ["layer4.1.conv1.weight"] + [f"layer4.1.bn1.{b}" for b in BN]
    + ["layer4.1.conv2.weight"] + [f"layer4.1.bn2.{b}" for b in BN]
    + ["fc.weight", "fc.bias"]
)


def _imagenet_like_checkpoint() -> dict[str, torch.Tensor]:
    """Random tensors with the names and shapes of the ImageNet ResNet-18 checkpoint (fc included)."""
    state = {
        k: (torch.randint(0, 9, v.shape) if v.dtype == torch.long else torch.randn(v.shape))
        for k, v in DilatedResNet18((64, 64, 128, 256, 512)).state_dict().items()
    }
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return state


@pytest.mark.parametrize("name", ["paper", "small"])
@pytest.mark.parametrize("height,width", [(224, 224), (160, 288), (100, 70)])
def test_video_net_shapes(name, height, width):
    cfg = get_model_config(name)
    net = VideoNet(cfg.video_net).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, height, width))
    assert out.shape == (1, cfg.num_components, -(-height // 16), -(-width // 16))
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", ["paper", "small"])
def test_audio_net_shapes(name):
    cfg = get_model_config(name)
    net = AudioUNet(cfg.audio_net).eval()
    m = cfg.audio_net.time_multiple
    for n, t in ((1, m), (2, 2 * m)):
        with torch.no_grad():
            out = net(torch.randn(n, 1, 256, t))
        assert out.shape == (n, cfg.num_components, 256, t)


def test_audio_net_widths_double_and_cap_at_8x():
    net = AudioUNet(get_model_config("paper").audio_net)
    convs = [next(m for m in down if isinstance(m, torch.nn.Conv2d)) for down in net.downs]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 512]
    assert net.ups[0][-1].out_channels == 32 and net.ups[0][-1].bias is not None  # K maps, no BatchNorm after
    assert isinstance(net.input_norm, torch.nn.BatchNorm2d) and net.input_norm.num_features == 1


def test_audio_net_rejects_bad_sizes_clearly():
    net = AudioUNet(get_model_config("small").audio_net).eval()  # num_downs 6: multiples of 64
    with pytest.raises(ValueError, match=r"multiples of 64 .*got F=256, T=100"):
        net(torch.randn(1, 1, 256, 100))
    with pytest.raises(ValueError, match=r"multiples of 64 .*got F=200, T=128"):
        net(torch.randn(1, 1, 200, 128))
    with pytest.raises(ValueError, match=r"\(N, 1, F, T\)"):
        net(torch.randn(1, 2, 256, 128))


def test_paper_config_is_the_papers():
    cfg = get_model_config("paper")
    assert cfg.num_components == 32 and cfg.audio_net.num_downs == 7 and cfg.audio_net.base_channels == 64
    assert cfg.video_net.widths == (64, 64, 128, 256, 512) and cfg.video_net.frame_size == 224
    assert model_config_from_dict(cfg.to_dict()) == cfg


def test_resnet_names_are_the_imagenet_checkpoints():
    trunk = DilatedResNet18((64, 64, 128, 256, 512))
    expected = [k for k in TORCHVISION_RESNET18_KEYS if not k.startswith("fc.")]
    assert list(trunk.state_dict()) == expected
    assert len(TORCHVISION_RESNET18_KEYS) == 122
    small = DilatedResNet18(get_model_config("small").video_net.widths)
    assert list(small.state_dict()) == expected


def test_load_imagenet_weights_round_trip(tmp_path):
    state = _imagenet_like_checkpoint()
    torch.save(state, tmp_path / "resnet18.pth")
    trunk = DilatedResNet18((64, 64, 128, 256, 512))
    load_imagenet_weights(trunk, tmp_path / "resnet18.pth")
    for name, value in trunk.state_dict().items():
        assert torch.equal(value, state[name]), name
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    load_imagenet_weights(DilatedResNet18(), tmp_path / "wrapped.pth")


def test_load_imagenet_weights_refuses_mismatches_in_one_line(tmp_path):
    state = _imagenet_like_checkpoint()
    torch.save(state, tmp_path / "resnet18.pth")
    small = DilatedResNet18(get_model_config("small").video_net.widths)
    before = {k: v.clone() for k, v in small.state_dict().items()}
    with pytest.raises(ModelError, match="ImageNet widths") as info:
        load_imagenet_weights(small, tmp_path / "resnet18.pth")
    assert "\n" not in str(info.value)
    assert all(torch.equal(v, before[k]) for k, v in small.state_dict().items())  # nothing half-loaded
    del state["layer3.1.conv2.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="not a ResNet-18 state dict.*layer3.1.conv2.weight"):
        load_imagenet_weights(DilatedResNet18(), tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="cannot read"):
        load_imagenet_weights(DilatedResNet18(), tmp_path / "absent.pth")


def test_layer4_is_dilated_not_strided():
    trunk = DilatedResNet18((16, 16, 32, 64, 128))
    block0, block1 = trunk.layer4
    assert block0.conv1.stride == (1, 1) and block0.downsample[0].stride == (1, 1)
    assert block0.conv2.dilation == block1.conv1.dilation == block1.conv2.dilation == (2, 2)
    assert trunk.layer3[0].conv1.stride == (2, 2)
    assert trunk(torch.rand(1, 3, 224, 224)).shape[-2:] == (14, 14)


def test_video_net_normalises_inside():
    net = VideoNet(get_model_config("small").video_net).eval()
    grey = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    seen: dict[str, torch.Tensor] = {}

    def keep_input(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen["x"] = args[0]

    net.trunk.conv1.register_forward_pre_hook(keep_input)
    with torch.no_grad():
        net(grey)
    assert torch.allclose(seen["x"], torch.zeros(1, 3, 32, 32), atol=1e-6)


def test_synthesizer_known_answer():
    synth = Synthesizer(3)
    assert torch.equal(synth.alpha.data, torch.ones(3)) and torch.equal(synth.beta.data, torch.zeros(1))
    with torch.no_grad():
        synth.alpha.copy_(torch.tensor([1.0, 2.0, -1.0]))
        synth.beta.fill_(0.5)
    v = torch.tensor([[1.0, 0.5, 2.0], [0.0, 1.0, 0.0]])
    s = torch.zeros(2, 3, 2, 4)
    s[:, 0], s[:, 1], s[:, 2] = 1.0, 3.0, 0.25
    s[1, 1, 1, 3] = -2.0
    out = synth(v, s)
    assert out.shape == (2, 2, 4)
    # row 0: 1*1*1 + 2*0.5*3 - 1*2*0.25 + 0.5 = 4.0; row 1: 2*1*3 + 0.5 = 6.5 (and 2*1*-2 + 0.5 = -3.5)
    expected = torch.full((2, 2, 4), 4.0)
    expected[1] = 6.5
    expected[1, 1, 3] = -3.5
    assert torch.allclose(out, expected)
    with pytest.raises(ValueError, match="synthesizer expects"):
        synth(v[:, :2], s)


def test_pool_clip():
    f = torch.zeros(6, 2, 3, 3)
    f[1, 0, 2, 2] = 0.9
    f[4, 1, 0, 0] = 0.7
    assert torch.allclose(pool_clip(f, 3), torch.tensor([[0.9, 0.0], [0.0, 0.7]]))
    with pytest.raises(ValueError, match="whole number"):
        pool_clip(f, 4)


def test_pool_cells_reads_only_the_clicked_cells():
    from pixelsep_plugin.nets.video import pool_cells

    features = torch.rand(1, 2, 3, 4, 5) * 0.5  # (B, F, K, h, w)
    features[0, 1, 2, 3, 4] = 0.99  # outside both clicks
    features[0, 0, 1, 0, 0] = 0.8  # inside clip 0's click, frame 0
    cells = torch.zeros(1, 2, 2, 4, 5, dtype=torch.bool)
    cells[0, 0, :, 0:2, 0:2] = True
    cells[0, 1, :, 2:4, 2:4] = True
    out = pool_cells(features, cells)
    assert out.shape == (1, 2, 3)
    assert torch.equal(out[0, 0], features[0, :, :, 0:2, 0:2].amax(dim=(0, 2, 3)))
    assert torch.equal(out[0, 1], features[0, :, :, 2:4, 2:4].amax(dim=(0, 2, 3)))
    assert out[0, 0, 1] == pytest.approx(0.8) and out[0, 1, 2] < 0.99
    with pytest.raises(ValueError, match="pool_cells expects"):
        pool_cells(features, cells[:, :, :1])


def test_torch_front_end_agrees_with_numpy():
    cfg = AudioFrontEndConfig()
    rng = np.random.default_rng(0)
    t = np.arange(2 * cfg.sample_rate + 77) / cfg.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    expected = log_magnitude(np.abs(Stft(cfg.n_fft, cfg.hop_length)(x)), cfg)
    magnitude, log = TorchFrontEnd(cfg)(torch.from_numpy(np.stack([x, 0.5 * x])))
    assert log.shape == magnitude.shape == (2, cfg.log_freq_bins, x.size // cfg.hop_length + 1)
    assert log.shape[1:] == expected.shape
    # float32 FFTs differ in the last bits: compare where the magnitude is not tiny (within 60 dB of the peak)
    loud = expected > expected.max() - np.log(1000.0)
    assert loud.mean() > 0.5
    np.testing.assert_allclose(log[0].numpy()[loud], expected[loud], atol=1e-4)
    np.testing.assert_allclose(log[1].numpy()[loud], expected[loud] + np.log(0.5), atol=1e-4)
    np.testing.assert_allclose(magnitude[0].numpy(), np.exp(expected), rtol=1e-3, atol=1e-6)


def test_builders_and_seeded_builds():
    cfg = get_model_config("small")
    assert set(NET_BUILDERS) == {"video", "audio", "synthesizer"}
    assert isinstance(NET_BUILDERS["audio"](cfg), AudioUNet)
    a, b = build_pixelplayer(cfg, seed=3), build_pixelplayer(cfg, seed=3)
    assert isinstance(a, PixelPlayer) and a.cfg == cfg
    assert list(a.state_dict()) == list(b.state_dict())
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    c = build_pixelplayer(cfg, seed=4)
    assert not torch.equal(a.video_net.head.weight, c.video_net.head.weight)
