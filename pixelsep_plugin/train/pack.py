"""Sample packs: decoded training samples in a small portable folder.

A pack carries what the trainer reads from a clip (the 11025 Hz analysis audio and the frames
sampled at the config's rate, resized as inference resizes them) without the videos: the audio as
Ogg Vorbis, the frames as one animated WebP per clip, and ``pack.json`` with the labels, frame
times and the decoding settings. A pack is about a tenth of its source videos, so a set decoded on
one machine can be copied to another (a GPU box without FFmpeg, say) and trained on there. The
codecs are lossy; the trainer mixes and separates the decoded samples themselves, so its targets
stay exact.

A pack folder can stand wherever a config names a folder of clips (``train_dirs``, ``val_dirs``).
Reading a pack needs Pillow and soundfile, not PyAV.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pixelsep_plugin.train.data import CachedClip

PACK_FILE = "pack.json"
PACK_VERSION = 1


def is_pack(folder: Path | str) -> bool:
    return (Path(folder) / PACK_FILE).is_file()


def _codecs():
    try:
        import soundfile
        from PIL import Image
    except ImportError as error:
        raise ImportError(f"sample packs need Pillow and soundfile ({error.name} is missing)") from None
    return soundfile, Image


def write_pack(
    clips: Sequence[CachedClip],
    out_dir: Path | str,
    sample_rate: int,
    frame_size: int,
    frames_per_second: float,
    image_quality: int = 75,
    audio_quality: float = 0.4,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``clips`` (decoded with the given settings) as a pack in ``out_dir``.

    ``audio_quality`` is Vorbis' compression level (0 best, 1 smallest); ``image_quality`` WebP's."""
    soundfile, Image = _codecs()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, clip in enumerate(clips):
        stem = f"{index:05d}"
        with (out / f"{stem}.ogg").open("wb") as f:
            soundfile.write(f, np.asarray(clip.audio, dtype=np.float32), sample_rate, format="OGG",
                            subtype="VORBIS", compression_level=audio_quality)  # fmt: skip
        images = [Image.fromarray(np.asarray(frame)) for frame in clip.frames]
        images[0].save(out / f"{stem}.webp", "WEBP", save_all=True, append_images=images[1:], quality=image_quality,
                       method=4, duration=max(1, round(1000 / frames_per_second)))  # fmt: skip
        entries.append({
            "file": stem, "source": clip.path.name, "label": clip.label, "samples": int(clip.audio.shape[0]),
            "frame_times": [round(float(t), 6) for t in clip.frame_times],
        })  # fmt: skip
        if clip.boxes is not None and np.isfinite(clip.boxes).all():
            entries[-1]["boxes"] = np.round(np.asarray(clip.boxes, dtype=np.float64), 1).tolist()
        if progress:
            progress(index + 1, len(clips))
    doc = {
        "version": PACK_VERSION, "sample_rate": sample_rate, "frame_size": frame_size,
        "frames_per_second": frames_per_second, "clips": entries,
    }  # fmt: skip
    (out / PACK_FILE).write_text(json.dumps(doc, indent=1))
    return out


def _read_entry(folder: Path, entry: dict) -> CachedClip:
    soundfile, Image = _codecs()
    audio, _ = soundfile.read(folder / f"{entry['file']}.ogg", dtype="float32", always_2d=False)
    audio = audio[: entry["samples"]]
    if audio.shape[0] < entry["samples"]:
        audio = np.pad(audio, (0, entry["samples"] - audio.shape[0]))
    frames = []
    with Image.open(folder / f"{entry['file']}.webp") as image:
        for i in range(getattr(image, "n_frames", 1)):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    times = np.asarray(entry["frame_times"], dtype=np.float64)
    if len(frames) != len(times):
        raise ValueError(f"pack {folder}: {entry['file']}.webp has {len(frames)} frames, expected {len(times)}")
    boxes = np.asarray(entry["boxes"], dtype=np.float32) if "boxes" in entry else None
    return CachedClip(folder / entry["source"], entry["label"], np.ascontiguousarray(audio), np.stack(frames), times, boxes)


def read_pack(
    folder: Path | str,
    sample_rate: int,
    frame_size: int,
    frames_per_second: float,
    workers: int = 4,
) -> list[CachedClip]:
    """Every clip of the pack in ``folder``; its decoding settings must match the run's."""
    folder = Path(folder)
    doc = json.loads((folder / PACK_FILE).read_text())
    if doc.get("version") != PACK_VERSION:
        raise ValueError(f"pack {folder} has version {doc.get('version')}, this pixelsep reads {PACK_VERSION}")
    wanted = {"sample_rate": sample_rate, "frame_size": frame_size, "frames_per_second": frames_per_second}
    for key, value in wanted.items():
        if doc[key] != value:
            raise ValueError(f"pack {folder} was decoded with {key} {doc[key]}, the run needs {value}")
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(lambda e: _read_entry(folder, e), doc["clips"]))
