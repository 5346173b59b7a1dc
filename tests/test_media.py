import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin.errors import InputError, MediaError


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("a.mp4", {}),
        ("a.mov", {}),
        ("a.mkv", {"sample_rate": 22050, "channel_layout": "5.1"}),
        ("a.webm", {"sample_rate": 48000}),
    ],
)
def test_containers_probe_and_decode(clip_factory, name, kwargs):
    clip = clip_factory(name, **kwargs)
    info = media.probe(clip)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (160, 120) and info.rotation_degrees == 0
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert info.sample_rate == kwargs.get("sample_rate", 44100)
    assert info.channel_layout == kwargs.get("channel_layout", "stereo")
    audio, rate = media.read_audio(clip)
    assert rate == info.sample_rate and audio.shape[0] == info.num_channels
    assert audio.shape[1] == pytest.approx(2.0 * rate, rel=0.05)
    # the tones are there, in every channel
    spectrum = np.abs(np.fft.rfft(audio[-1, rate // 2 : rate // 2 + rate]))
    assert {440, 660} <= set(np.argsort(spectrum)[-2:].tolist())


def test_analysis_audio_is_11025_mono(clip_factory):
    clip = clip_factory("a.mp4")
    native, rate = media.read_audio(clip)
    mono = media.read_analysis_audio(clip)
    assert mono.ndim == 1 and mono.dtype == np.float32
    assert abs(mono.size - native.shape[1] * 11025 / rate) <= 64
    blocks = list(media.iter_analysis_audio(clip, block_samples=1000))
    assert all(b.size == 1000 for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks), mono)


def test_native_audio_blocks(clip_factory):
    clip = clip_factory("b.mkv", channel_layout="5.1", sample_rate=48000)
    blocks = list(media.iter_audio_blocks(clip, block_samples=10_000))
    assert all(b.shape == (6, 10_000) for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), media.read_audio(clip)[0])


def _red_centre(rgb):
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 100) & (rgb[..., 2] < 100)
    ys, xs = np.nonzero(red)
    return xs.mean() / rgb.shape[1], ys.mean() / rgb.shape[0]


def test_sampled_frames_count_size_and_orientation(clip_factory):
    clip = clip_factory("a.mp4")
    frames = list(media.iter_sampled_frames(clip, 2.0, 96))
    assert [t for t, _ in frames] == [0.0, 0.5, 1.0, 1.5]
    assert all(rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8 for _, rgb in frames)
    x, _ = _red_centre(frames[0][1])
    assert x < 1 / 3  # the red performer is in the left third


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_honoured(clip_factory, rotation):
    clip = clip_factory(f"rot{rotation}.mov", rotation_degrees=rotation)
    info = media.probe(clip)
    assert info.rotation_degrees == rotation
    assert (info.width, info.height) == ((120, 160) if rotation in (90, 270) else (160, 120))
    _, rgb = next(iter(media.iter_sampled_frames(clip, 1.0, 96)))
    assert rgb.shape[:2] == ((128, 96) if rotation in (90, 270) else (96, 128))
    full = media.read_frame(clip, 0.0)
    assert full.shape[:2] == (info.height, info.width)
    x, y = _red_centre(full)
    # coded: red at the left; turned clockwise by 90 for display it is at the top, by 180 at the right
    expected = {90: lambda: y < 1 / 3, 180: lambda: x > 2 / 3, 270: lambda: y > 2 / 3}[rotation]
    assert expected(), (x, y)


def test_keyframe_only_decoding_when_keyframes_are_dense(clip_factory):
    dense = clip_factory("gop30.mp4", seconds=4.0, keyframe_interval=30)
    sparse = clip_factory("gop250.mp4", seconds=4.0)
    assert media.plan_frame_decoding(dense, 1.0) == "keyframes"
    assert media.plan_frame_decoding(sparse, 1.0) == "all"
    a = [t for t, _ in media.iter_sampled_frames(dense, 1.0, 96)]
    b = [t for t, _ in media.iter_sampled_frames(sparse, 1.0, 96)]
    assert a == b == [0.0, 1.0, 2.0, 3.0]


def test_frame_size_for():
    assert media.frame_size_for(1920, 1080, 160) == (288, 160)
    assert media.frame_size_for(1080, 1920, 160) == (160, 288)
    assert media.frame_size_for(640, 480, 224) == (304, 224)


def test_errors_are_one_line(clip_factory, tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        media.probe(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match="directory"):
        media.probe(tmp_path)
    text = tmp_path / "text.mp4"
    text.write_text("hello")
    with pytest.raises(MediaError, match="not a media file") as info:
        media.probe(text)
    assert "\n" not in str(info.value)
    silent = media.probe(clip_factory("silent.mp4", with_audio=False))
    with pytest.raises(MediaError, match="no audio stream"):
        media.require_audio(silent)
    with pytest.raises(MediaError, match="no audio stream"):
        list(media.iter_analysis_audio(silent.path))
    blind = media.probe(clip_factory("audio-only.mkv", with_video=False))
    with pytest.raises(MediaError, match="no video stream"):
        media.require_video(blind)


def test_a_truncated_file_fails_loudly(clip_factory, tmp_path):
    data = clip_factory("a.mp4").read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError):
        media.probe(broken)
        media.read_audio(broken)
        list(media.iter_sampled_frames(broken, 1.0, 96))


@pytest.mark.parametrize("suffix,tolerance", [(".wav", 0.0), (".flac", 2.0**-23)])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_write_audio_round_trip(tmp_path, suffix, tolerance, channels, rate):
    x = np.clip(np.random.default_rng(channels).standard_normal((channels, 5000)) * 0.25, -0.99, 0.99).astype(
        np.float32
    )
    path = media.write_audio(tmp_path / f"out{suffix}", x, rate)
    y, r = media.read_audio(path)
    assert r == rate and y.shape == x.shape
    assert np.abs(y - x).max() <= tolerance
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]  # no temp files left


def test_writer_is_atomic_and_protects_the_source(clip_factory, tmp_path):
    with pytest.raises(RuntimeError):
        with media.AudioWriter(tmp_path / "x.wav", 44100, "stereo") as writer:
            writer.write(np.zeros((2, 100), np.float32))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    source = tmp_path / "clip.wav"
    media.write_audio(source, np.zeros((1, 10), np.float32), 8000)
    with pytest.raises(InputError, match="source clip"):
        media.write_audio(source, np.zeros((1, 10), np.float32), 8000, protect=[source])
    with pytest.raises(InputError, match=".wav or .flac"):
        media.AudioWriter(tmp_path / "x.mp3", 44100, "stereo")


def test_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    media.write_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(media.read_png(tmp_path / "x.png"), image)
