"""Training data: ordinary video files, decoded once into a sample cache, mixed at random.

Any folder of .mp4/.mov/.mkv/.webm clips works (synthetic ones or real footage). A clip's label
(its instrument) comes from a pixelsep sidecar ``NAME.json`` with one performer, else from a
``labels.json`` ({file name: label}) in its folder, else it is unknown. Clips with the same known
label are never mixed together.

The cache holds, per clip, the 11025 Hz mono analysis audio (float32), frames sampled at
``frames_per_second``, resized exactly as inference resizes them (uint8), and where a pixelsep
sidecar gives them the performer's box in each sampled frame (in the resized frame's pixels; NaN
where unknown), as plain ``.npy`` files
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
CACHE_VERSION = 2


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
    boxes: np.ndarray | None = None  # float32 (n, 4): the performer's x0, y0, x1, y1 in frame pixels; NaN rows unknown


def sidecar_boxes(clip: Path, frame_times: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """The single performer's box at each sampled frame time, scaled to frames of ``frame_shape``
    (height, width); all NaN when the clip has no pixelsep sidecar with one performer."""
    out = np.full((len(frame_times), 4), np.nan, dtype=np.float32)
    sidecar = clip.with_suffix(".json")
    if not sidecar.is_file():
        return out
    try:
        data = json.loads(sidecar.read_text())
        performers = data.get("performers", [])
        if len(performers) != 1:
            return out
        boxes = np.asarray(performers[0]["boxes"], dtype=np.float32)
        fps, width, height = float(data["fps"]), float(data["width"]), float(data["height"])
    except (ValueError, KeyError, TypeError):
        return out
    index = np.clip(np.round(np.asarray(frame_times) * fps).astype(int), 0, len(boxes) - 1)
    scale = np.array([frame_shape[1] / width, frame_shape[0] / height] * 2, dtype=np.float32)
    return boxes[index] * scale


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
    np.save(temp / "boxes.npy", sidecar_boxes(Path(clip), np.asarray(times), frames[0].shape[:2]))
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
                np.load(folder / "boxes.npy", allow_pickle=False),
            )
        )
    return out


@dataclass
class MixBatch:
    audio: np.ndarray  # float32 (B, N, samples): each clip's audio, gain applied
    # uint8 (B, N, frames_per_clip, H, W, 3): each clip's own frames; or, for composite batches,
    # (B, 1, frames_per_clip, H, W, 3): one picture per frame holding every clip of the mix
    frames: np.ndarray
    clips: list[list[int]]  # indices of the clips in each mix
    # composite batches: bool (B, N, frames_per_clip, h, w), the feature cells a click on each clip reads
    cells: np.ndarray | None = None


def click_cells(x: float, y: float, width: int, height: int, reach: int) -> tuple[int, int, int, int, int, int]:
    """The feature cells a click at pixel (x, y) of a width x height frame reads, as the runtime
    reads them (:func:`pixelsep_plugin.runtime.query.track_part`): the cell under the point and
    those within ``reach`` cells. Returns (row, col, row0, row1, col0, col1), rows/cols end-exclusive."""
    h, w = -(-height // OUTPUT_STRIDE), -(-width // OUTPUT_STRIDE)
    row, col = min(int(y * h / height), h - 1), min(int(x * w / width), w - 1)
    return row, col, max(0, row - reach), min(h, row + reach + 1), max(0, col - reach), min(w, col + reach + 1)


OUTPUT_STRIDE = 16  # the video net's: one feature cell per 16 x 16 pixels


class MixSampler:
    """Random mixes of clips (different known labels), one window each.

    A window is ``window_columns`` STFT columns of audio, i.e. ``(window_columns - 1) * hop`` samples;
    its frames are ``frames_per_clip`` sampled frames spread over the window (jittered). All clips
    in one batch must share a frame size (clips of different sizes go in different batches). Each
    batch mixes ``num_mix`` clips, or a number drawn from ``mix_sizes`` when given.

    ``composite``: "train as you click". The frames of a mix's clips are composed into one picture
    per frame, side by side in slots of random widths and random order, each clip cropped around
    its performer (its sidecar box; the middle of the frame when it has none) at a random zoom,
    maybe mirrored; each clip is then represented by the feature cells a click at a point inside
    its performer reads (``reach_cells`` around it, the point following the performer's box from
    frame to frame), exactly as the runtime pools a click.
    """

    def __init__(
        self,
        clips: list[CachedClip],
        cfg: ModelConfig,
        num_mix: int,
        frames_per_clip: int,
        gain_range: tuple[float, float],
        rng: np.random.Generator,
        composite: bool = False,
        reach_cells: int = 1,
        mix_sizes: tuple[int, ...] = (),
    ) -> None:
        self.clips = clips
        self.mix_sizes = tuple(mix_sizes) or (num_mix,)
        self.num_mix = max(self.mix_sizes)
        self.frames_per_clip = frames_per_clip
        self.gain_range = gain_range
        self.rng = rng
        self.composite = composite
        self.reach_cells = reach_cells
        self.samples = (cfg.chunks.window_columns - 1) * cfg.audio.hop_length
        self.sample_rate = cfg.audio.sample_rate
        usable = [i for i, c in enumerate(clips) if c.audio.shape[0] >= self.samples]
        if len(usable) < self.num_mix:
            raise ValueError(
                f"need at least {self.num_mix} clips of {self.samples / self.sample_rate:.1f} s or more, found {len(usable)}"
            )
        shapes: dict[tuple[int, ...], list[int]] = {}
        for i in usable:
            shapes.setdefault(tuple(clips[i].frames.shape[1:]), []).append(i)
        self.groups = [g for g in shapes.values() if len(g) >= self.num_mix]
        if not self.groups:
            raise ValueError("no frame size is shared by enough clips to mix")

    def _pick(self, group: list[int], num_mix: int) -> list[int]:
        for _ in range(100):
            chosen = [group[j] for j in self.rng.choice(len(group), num_mix, replace=False)]
            labels = [self.clips[i].label for i in chosen if self.clips[i].label is not None]
            if len(set(labels)) == len(labels):
                return chosen
        raise ValueError("cannot find clips with different labels to mix: add other instruments")

    def window(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One random window of a clip: audio (samples,), frames (F, H, W, 3), boxes (F, 4)."""
        clip = self.clips[index]
        start = int(self.rng.integers(0, clip.audio.shape[0] - self.samples + 1))
        audio = np.array(clip.audio[start : start + self.samples], dtype=np.float32)
        t0, t1 = start / self.sample_rate, (start + self.samples) / self.sample_rate
        span = t1 - t0
        wanted = t0 + (np.arange(self.frames_per_clip) + 0.5) / self.frames_per_clip * span
        wanted += self.rng.uniform(-0.5, 0.5, size=wanted.shape) * span / self.frames_per_clip
        picks = np.clip(np.searchsorted(clip.frame_times, wanted, side="right") - 1, 0, len(clip.frame_times) - 1)
        if clip.boxes is not None:
            boxes = np.asarray(clip.boxes[picks], dtype=np.float32)
        else:
            boxes = np.full((picks.size, 4), np.nan, dtype=np.float32)
        return audio, np.asarray(clip.frames[picks]), boxes

    def _compose(self, pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """One composite picture per frame from the clips' frames; returns (frames (F, H, W, 3),
        cells (N, F, h, w) bool)."""
        from PIL import Image

        num_frames, height, width = pieces[0][1].shape[:3]
        n = len(pieces)
        shares = self.rng.uniform(0.75, 1.25, size=n)
        edges = np.round(np.concatenate([[0.0], np.cumsum(shares) / shares.sum()]) * width).astype(int)
        order = self.rng.permutation(n)
        canvas = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
        h, w = -(-height // OUTPUT_STRIDE), -(-width // OUTPUT_STRIDE)
        cells = np.zeros((n, num_frames, h, w), dtype=bool)
        for slot, clip_index in enumerate(order):
            _, frames, boxes = pieces[clip_index]
            x_lo, x_hi = int(edges[slot]), int(edges[slot + 1])
            slot_width = x_hi - x_lo
            boxes = boxes.copy()
            unknown = ~np.isfinite(boxes).all(axis=1)
            boxes[unknown] = [0.25 * width, 0.2 * height, 0.75 * width, 0.8 * height]
            union = np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])
            aspect = slot_width / height
            need = max((union[3] - union[1]) * 1.1, (union[2] - union[0]) * 1.1 / aspect, 8.0)
            crop_h = need * float(self.rng.uniform(1.0, 1.6))
            crop_w = crop_h * aspect
            cx_lo, cx_hi = union[2] - crop_w / 2, union[0] + crop_w / 2
            cy_lo, cy_hi = union[3] - crop_h / 2, union[1] + crop_h / 2
            cx = float(self.rng.uniform(min(cx_lo, cx_hi), max(cx_lo, cx_hi)))
            cy = float(self.rng.uniform(min(cy_lo, cy_hi), max(cy_lo, cy_hi)))
            x0, y0 = cx - crop_w / 2, cy - crop_h / 2
            mirror = bool(self.rng.random() < 0.5)
            fill = tuple(int(v) for v in frames.reshape(-1, 3).mean(axis=0))
            for f in range(num_frames):
                image = Image.fromarray(frames[f])
                piece = image.transform(
                    (slot_width, height), Image.EXTENT, (x0, y0, x0 + crop_w, y0 + crop_h), Image.BILINEAR, fillcolor=fill
                )
                if mirror:
                    piece = piece.transpose(Image.FLIP_LEFT_RIGHT)
                canvas[f, :, x_lo:x_hi] = np.asarray(piece)
            # a click inside the performer, the same place relative to its box in every frame
            jitter = self.rng.uniform(-0.2, 0.2, size=2)
            for f in range(num_frames):
                bx0, by0, bx1, by1 = boxes[f]
                px = (bx0 + bx1) / 2 + jitter[0] * (bx1 - bx0)
                py = (by0 + by1) / 2 + jitter[1] * (by1 - by0)
                sx = (px - x0) / crop_w * slot_width
                x = x_lo + (slot_width - 1 - sx if mirror else sx)
                y = (py - y0) / crop_h * height
                x, y = float(np.clip(x, x_lo, x_hi - 1)), float(np.clip(y, 0, height - 1))
                _, _, r0, r1, c0, c1 = click_cells(x, y, width, height, self.reach_cells)
                cells[clip_index, f, r0:r1, c0:c1] = True
        return canvas, cells

    def batch(self, size: int) -> MixBatch:
        group = self.groups[int(self.rng.integers(len(self.groups)))]
        num_mix = int(self.mix_sizes[int(self.rng.integers(len(self.mix_sizes)))])
        audios, frames, chosen, cells = [], [], [], []
        for _ in range(size):
            members = self._pick(group, num_mix)
            pieces = [self.window(i) for i in members]
            gains = self.rng.uniform(*self.gain_range, size=num_mix).astype(np.float32)
            audios.append(np.stack([p[0] for p in pieces]) * gains[:, None])
            if self.composite:
                picture, clicked = self._compose(pieces)
                frames.append(picture[None])
                cells.append(clicked)
            else:
                frames.append(np.stack([p[1] for p in pieces]))
            chosen.append(members)
        return MixBatch(np.stack(audios), np.stack(frames), chosen, np.stack(cells) if cells else None)
