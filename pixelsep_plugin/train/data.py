"""Training data: ordinary video files, decoded once into a sample cache, mixed at random.

Any folder of .mp4/.mov/.mkv/.webm clips works (synthetic ones or real footage). A clip's label
(its instrument) comes from a pixelsep sidecar ``NAME.json`` with one performer, else from a
``labels.json`` ({file name: label}) in its folder, else it is unknown. Clips with the same known
label are never mixed together.

The cache holds, per clip, the 11025 Hz mono analysis audio (float32) and frames sampled at
``frames_per_second``, resized exactly as inference resizes them (uint8), as plain ``.npy`` files
(read without pickle) under a key of the file's path, size, modification time and the decoding
settings. Decoding happens once; epochs read memory-mapped arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelsep_plugin.config import ModelConfig

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    from pixelsep_plugin.runtime.analysis import default_cache_root

    return default_cache_root() / "train-samples"


def find_clips(folders: Sequence[str | Path]) -> list[Path]:
    clips = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"training folder {folder} not found")
        clips += sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    return clips


def clip_label(clip: Path) -> str | None:
    sidecar = clip.with_suffix(".json")
    if sidecar.is_file():
        try:
            performers = json.loads(sidecar.read_text()).get("performers", [])
        except ValueError:
            performers = []
        if len(performers) == 1:
            return str(performers[0]["instrument"])
    labels = clip.parent / "labels.json"
    if labels.is_file():
        return json.loads(labels.read_text()).get(clip.name)
    return None


@dataclass
class CachedClip:
    path: Path
    label: str | None
    audio: np.ndarray  # float32 (samples,) at the analysis rate
    frames: np.ndarray  # uint8 (n, H, W, 3)
    frame_times: np.ndarray  # float64 (n,)


def _cache_key(clip: Path, cfg: ModelConfig, frames_per_second: float) -> str:
    stat = clip.stat()
    text = json.dumps(
        [CACHE_VERSION, str(clip.resolve()), stat.st_size, stat.st_mtime_ns, cfg.audio.sample_rate,
         cfg.video_net.frame_size, frames_per_second]
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _decode_into(args: tuple[str, str, int, int, float]) -> str:
    from pixelsep_plugin import media  # PyAV: only where videos are decoded (sample packs need none)

    clip, folder, sample_rate, frame_size, fps = args
    folder_path = Path(folder)
    temp = folder_path.with_name(folder_path.name + f".tmp{os.getpid()}")
    temp.mkdir(parents=True, exist_ok=True)
    audio = media.read_analysis_audio(clip, sample_rate).astype(np.float32)
    times, frames = [], []
    for t, rgb in media.iter_sampled_frames(clip, fps, frame_size):
        times.append(t)
        frames.append(rgb)
    if not frames:
        raise media.MediaError(f"no video frames in {clip}")
    np.save(temp / "audio.npy", audio)
    np.save(temp / "frames.npy", np.stack(frames))
    np.save(temp / "frame_times.npy", np.asarray(times, dtype=np.float64))
    os.replace(temp, folder_path)
    return clip


def load_clips(
    clips: Sequence[Path],
    cfg: ModelConfig,
    frames_per_second: float,
    cache_dir: Path,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[CachedClip]:
    """Every clip from the cache, decoding (in ``workers`` processes) those not cached yet."""
    folders = [cache_dir / _cache_key(clip, cfg, frames_per_second) for clip in clips]
    todo = [
        (str(clip), str(folder), cfg.audio.sample_rate, cfg.video_net.frame_size, frames_per_second)
        for clip, folder in zip(clips, folders, strict=True)
        if not (folder / "frame_times.npy").is_file()
    ]
    cache_dir.mkdir(parents=True, exist_ok=True)
    done = len(clips) - len(todo)
    if progress:
        progress(done, len(clips))
    if todo:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(_decode_into, todo, chunksize=4):
                    done += 1
                    if progress:
                        progress(done, len(clips))
        else:
            for job in todo:
                _decode_into(job)
                done += 1
                if progress:
                    progress(done, len(clips))
    out = []
    for clip, folder in zip(clips, folders, strict=True):
        out.append(
            CachedClip(
                clip,
                clip_label(clip),
                np.load(folder / "audio.npy", mmap_mode="r", allow_pickle=False),
                np.load(folder / "frames.npy", mmap_mode="r", allow_pickle=False),
                np.load(folder / "frame_times.npy", allow_pickle=False),
            )
        )
    return out


@dataclass
class MixBatch:
    audio: np.ndarray  # float32 (B, N, samples): each clip's audio, gain applied
    frames: np.ndarray  # uint8 (B, N, frames_per_clip, H, W, 3)
    clips: list[list[int]]  # indices of the clips in each mix


class MixSampler:
    """Random mixes of ``num_mix`` clips (different known labels), one window each.

    A window is ``window_columns`` STFT columns of audio, i.e. ``(window_columns - 1) * hop`` samples;
    its frames are ``frames_per_clip`` sampled frames spread over the window (jittered). All clips
    in one batch must share a frame size (clips of different sizes go in different batches).
    """

    def __init__(
        self,
        clips: list[CachedClip],
        cfg: ModelConfig,
        num_mix: int,
        frames_per_clip: int,
        gain_range: tuple[float, float],
        rng: np.random.Generator,
    ) -> None:
        self.clips = clips
        self.num_mix = num_mix
        self.frames_per_clip = frames_per_clip
        self.gain_range = gain_range
        self.rng = rng
        self.samples = (cfg.chunks.window_columns - 1) * cfg.audio.hop_length
        self.sample_rate = cfg.audio.sample_rate
        usable = [i for i, c in enumerate(clips) if c.audio.shape[0] >= self.samples]
        if len(usable) < num_mix:
            raise ValueError(
                f"need at least {num_mix} clips of {self.samples / self.sample_rate:.1f} s or more, found {len(usable)}"
            )
        shapes: dict[tuple[int, ...], list[int]] = {}
        for i in usable:
            shapes.setdefault(tuple(clips[i].frames.shape[1:]), []).append(i)
        self.groups = [g for g in shapes.values() if len(g) >= num_mix]
        if not self.groups:
            raise ValueError("no frame size is shared by enough clips to mix")

    def _pick(self, group: list[int]) -> list[int]:
        for _ in range(100):
            chosen = [group[j] for j in self.rng.choice(len(group), self.num_mix, replace=False)]
            labels = [self.clips[i].label for i in chosen if self.clips[i].label is not None]
            if len(set(labels)) == len(labels):
                return chosen
        raise ValueError("cannot find clips with different labels to mix: add other instruments")

    def window(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        clip = self.clips[index]
        start = int(self.rng.integers(0, clip.audio.shape[0] - self.samples + 1))
        audio = np.array(clip.audio[start : start + self.samples], dtype=np.float32)
        t0, t1 = start / self.sample_rate, (start + self.samples) / self.sample_rate
        span = t1 - t0
        wanted = t0 + (np.arange(self.frames_per_clip) + 0.5) / self.frames_per_clip * span
        wanted += self.rng.uniform(-0.5, 0.5, size=wanted.shape) * span / self.frames_per_clip
        picks = np.clip(np.searchsorted(clip.frame_times, wanted, side="right") - 1, 0, len(clip.frame_times) - 1)
        return audio, np.asarray(clip.frames[picks])

    def batch(self, size: int) -> MixBatch:
        group = self.groups[int(self.rng.integers(len(self.groups)))]
        audios, frames, chosen = [], [], []
        for _ in range(size):
            members = self._pick(group)
            pieces = [self.window(i) for i in members]
            gains = self.rng.uniform(*self.gain_range, size=self.num_mix).astype(np.float32)
            audios.append(np.stack([p[0] for p in pieces]) * gains[:, None])
            frames.append(np.stack([p[1] for p in pieces]))
            chosen.append(members)
        return MixBatch(np.stack(audios), np.stack(frames), chosen)
