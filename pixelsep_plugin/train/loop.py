"""Mix-and-separate training (PixelPlayer's self-supervision), checkpoints, validation and export.

One step: N solo windows are mixed; the audio net turns the mixture's log-frequency log magnitude
into K components; each clip's frames, through the video net and max-pooled over space and frames,
give that clip's K-vector; the synthesizer makes each clip's mask of the mixture, trained against
the clip's own share of the mixture:

- ``binary``: target 1 where the clip is the loudest of the N in the (warped) bin; weighted BCE
  with weight ``clamp(log1p(|mix|), 1e-3, 10)`` so that silent bins count little;
- ``ratio``: target ``clamp(|clip| / |mix|, 0, 1)``; the same weights on an L1 loss of the sigmoid.

Runs on a CUDA GPU when torch sees one (``device = "auto"``), else on the CPU; in one process, or data-parallel under ``torchrun`` (gloo on CPU, nccl on GPUs): every
process draws its own mixes; rank 0 logs, validates and checkpoints. A run folder holds
``config.json``, ``log.jsonl``, ``checkpoint.json`` + ``checkpoint-STEP-N.safetensors`` (model,
optimizer and random states in files of at most 16 MB, written atomically; no pickle) and, at the end, the model package ``model/``.
Running again with the same config resumes from the checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from pixelsep_plugin.audio.warp import unwarp
from pixelsep_plugin.config import ModelConfig
from pixelsep_plugin.nets.builders import PixelPlayer, build_pixelplayer
from pixelsep_plugin.nets.frontend import TorchFrontEnd
from pixelsep_plugin.nets.video import pool_cells, pool_clip
from pixelsep_plugin.train.config import TrainConfig
from pixelsep_plugin.train.data import CachedClip, MixBatch, MixSampler, default_cache_dir, find_clips, load_clips
from pixelsep_plugin.train.pack import is_pack, read_pack

CHECKPOINT = "checkpoint.safetensors"  # the single tensor file of runs saved before checkpoints were split
CHECKPOINT_SHARD_BYTES = 16 * 1024 * 1024
CHECKPOINT_META = "checkpoint.json"
LOG = "log.jsonl"


class MixAndSeparate(nn.Module):
    """The training graph around a :class:`PixelPlayer`; ``forward`` returns (loss, masks, targets)."""

    def __init__(self, model: PixelPlayer, mask: str) -> None:
        super().__init__()
        self.model = model
        self.frontend = TorchFrontEnd(model.cfg.audio)
        self.mask = mask

    def forward(
        self, audio: torch.Tensor, frames: torch.Tensor, cells: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """audio (B, N, samples) float32; frames (B, N, F, 3, H, W) float32 in [0, 1], each clip's
        own frames (its K-vector: max over the whole frame and its frames); or, with ``cells``
        (B, N, F, h, w) bool, composite frames (B, 1, F, 3, H, W) holding every clip, each clip's
        K-vector the max over its clicked cells and its frames (train as you click)."""
        b, n = audio.shape[:2]
        mix = audio.sum(dim=1)
        mag_mix, log_mix = self.frontend(mix)  # (B, F, T)
        with torch.no_grad():
            mags, _ = self.frontend(audio.reshape(b * n, -1))
            mags = mags.view(b, n, *mags.shape[1:])
        components = self.model.audio_net(log_mix[:, None])  # (B, K, F, T)
        per_clip = frames.shape[2]
        features = self.model.video_net(frames.reshape(-1, *frames.shape[3:]))
        if cells is None:
            vectors = pool_clip(features, per_clip).view(b, n, -1)  # (B, N, K)
        else:
            vectors = pool_cells(features.view(b, per_clip, *features.shape[1:]), cells)
        logits = torch.stack(
            [self.model.synthesizer(vectors[:, i], components) for i in range(n)], dim=1
        )  # (B, N, F, T)
        weight = torch.clamp(torch.log1p(mag_mix), 1e-3, 10.0)[:, None].expand_as(logits)
        if self.mask == "binary":
            target = (mags == mags.amax(dim=1, keepdim=True)).float() * (mags > 0).float()
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)
        else:
            target = torch.clamp(mags / (mag_mix[:, None] + 1e-10), 0.0, 1.0)
            loss = (weight * (torch.sigmoid(logits) - target).abs()).mean()
        return loss, torch.sigmoid(logits), target


def frames_to_tensor(
    frames: np.ndarray, rng: np.random.Generator | None, device: torch.device | str = "cpu", mirror: bool = True
) -> torch.Tensor:
    """uint8 (B, N, F, H, W, 3) -> float32 (B, N, F, 3, H, W) in [0, 1] on ``device`` (the bytes
    travel, the floats are made there); with ``rng`` a random brightness per clip (the same for a
    clip's frames) and, with ``mirror``, a random mirror (composite frames are mirrored per clip
    by their sampler instead)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device, non_blocking=True)
    x = x.float().div_(255.0).permute(0, 1, 2, 5, 3, 4)
    if rng is not None:
        b, n = x.shape[:2]
        if mirror:
            flip = torch.from_numpy(rng.random((b, n)) < 0.5).to(x.device)
            x[flip] = x[flip].flip(-1)
        gain = torch.from_numpy(rng.uniform(0.8, 1.2, size=(b, n, 1, 1, 1, 1)).astype(np.float32)).to(x.device)
        x = (x * gain).clamp_(0.0, 1.0)
    return x.contiguous()


def graph_inputs(
    batch: MixBatch, rng: np.random.Generator | None, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A batch as the training graph's (audio, frames, cells) on ``device``."""
    audio = torch.from_numpy(batch.audio).to(device, non_blocking=True)
    frames = frames_to_tensor(batch.frames, rng, device, mirror=batch.cells is None)
    cells = None if batch.cells is None else torch.from_numpy(batch.cells).to(device, non_blocking=True)
    return audio, frames, cells


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Plain signal-to-distortion ratio in dB (no allowed distortion filter; for training curves)."""
    error = reference - estimate
    return float(10 * np.log10((np.sum(reference**2) + 1e-9) / (np.sum(error**2) + 1e-9)))


class Validator:
    """Fixed validation mixes (same every time) scored by loss and SDR of the separated waveforms."""

    def __init__(self, sampler: MixSampler, count: int, batch_size: int, cfg: ModelConfig) -> None:
        self.batches = [sampler.batch(min(batch_size, count - i)) for i in range(0, count, batch_size)]
        self.cfg = cfg
        self.unwarp = torch.from_numpy(unwarp(cfg.audio).matrix())  # (F_lin, F_log)
        self.device = torch.device("cpu")

    @torch.no_grad()
    def __call__(self, graph: MixAndSeparate) -> dict[str, float]:
        was_training = graph.training
        graph.eval()
        front = graph.frontend
        device = next(graph.parameters()).device
        losses, sdrs, mix_sdrs = [], [], []
        for batch in self.batches:
            audio, frames, cells = graph_inputs(batch, None, device)
            loss, masks, _ = graph(audio, frames, cells)
            losses.append(float(loss))
            mix = audio.sum(dim=1)
            spec = front.linear_spectrogram(mix)  # (B, F_lin, T)
            linear_masks = torch.einsum("lf,bnft->bnlt", self.unwarp.to(device, masks.dtype), masks)
            for i in range(audio.shape[0]):
                for j in range(audio.shape[1]):
                    est = torch.istft(
                        spec[i] * linear_masks[i, j], front.cfg.n_fft, front.cfg.hop_length,
                        window=front.window, center=True, length=audio.shape[-1],
                    )  # fmt: skip
                    ref = batch.audio[i, j]
                    sdrs.append(sdr(ref, est.cpu().numpy()))
                    mix_sdrs.append(sdr(ref, mix[i].cpu().numpy()))
        graph.train(was_training)
        sdrs_a, mix_a = np.array(sdrs), np.array(mix_sdrs)
        return {
            "val_loss": float(np.mean(losses)),
            "val_sdr": float(np.median(sdrs_a)),
            "val_nsdr": float(np.median(sdrs_a - mix_a)),
        }


def recalibrate_batchnorm(graph: MixAndSeparate, sampler: MixSampler, batches: int, batch_size: int) -> None:
    """Replace every BatchNorm's running statistics by their exact average over ``batches`` fresh
    training batches under the current weights. The running averages kept during training trail
    the weights they were measured under; evaluation and export need statistics that match."""
    norms = [m for m in graph.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or batches <= 0:
        return
    momenta = [m.momentum for m in norms]
    was_training = graph.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    graph.train()
    device = next(graph.parameters()).device
    with torch.no_grad():
        for _ in range(batches):
            graph(*graph_inputs(sampler.batch(batch_size), None, device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    graph.train(was_training)


def _optimizer(graph: MixAndSeparate, cfg: TrainConfig) -> torch.optim.Optimizer:
    model = graph.model
    return torch.optim.AdamW(
        [
            {"params": model.video_net.parameters(), "lr": cfg.video_learning_rate},
            {"params": model.audio_net.parameters(), "lr": cfg.learning_rate},
            {"params": model.synthesizer.parameters(), "lr": cfg.learning_rate},
        ],
        weight_decay=cfg.weight_decay,
    )


def _progress(step: int, train_seconds: float, cfg: TrainConfig) -> float:
    """How far the run is, 0 to 1: by steps, or by time when ``cfg.minutes`` is set and further."""
    done = step / cfg.steps
    if cfg.minutes > 0:
        done = max(done, train_seconds / (60.0 * cfg.minutes))
    return min(done, 1.0)


def _lr_scale(done: float, cfg: TrainConfig) -> float:
    return 0.1 ** sum(done >= f for f in cfg.lr_drop_at)


def save_checkpoint(run: Path, graph: MixAndSeparate, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    """Model weights, optimizer moments and torch's RNG state as safetensors; the rest as JSON.

    The tensors go into files named by the step, each at most ``CHECKPOINT_SHARD_BYTES`` (so a run
    folder can travel where files are size-limited); ``checkpoint.json``, written last, lists
    them, and the files of earlier checkpoints are then removed: an interruption at any moment
    leaves the previous checkpoint or the new one, whole."""
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in graph.model.state_dict().items()}
    state = optimizer.state_dict()
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"optim/{index}/{name}"] = torch.as_tensor(value).detach().cpu().clone().contiguous()
    tensors["rng/torch"] = torch.get_rng_state()
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in tensors.items():
        nbytes = value.numel() * value.element_size()
        if shards[-1] and size + nbytes > CHECKPOINT_SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    names = [f"checkpoint-{meta['step']:07d}-{i}.safetensors" for i in range(len(shards))]
    for name, shard in zip(names, shards, strict=True):
        save_file(shard, str(run / (name + ".tmp")))
        os.replace(run / (name + ".tmp"), run / name)
    meta_temp = run / (CHECKPOINT_META + ".tmp")
    meta_temp.write_text(json.dumps({**meta, "files": names}, indent=1))
    os.replace(meta_temp, run / CHECKPOINT_META)
    for old in [*run.glob("checkpoint-*.safetensors"), run / CHECKPOINT]:
        if old.name not in names and old.is_file():
            old.unlink()


def has_checkpoint(run: Path) -> bool:
    return (run / CHECKPOINT_META).is_file()


def load_checkpoint(run: Path, graph: MixAndSeparate, optimizer: torch.optim.Optimizer | None) -> dict:
    meta = json.loads((run / CHECKPOINT_META).read_text())
    tensors: dict[str, torch.Tensor] = {}
    for name in meta.get("files", [CHECKPOINT]):  # runs saved before shards: one checkpoint.safetensors
        tensors.update(load_file(str(run / name)))
    graph.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, strict=True)
    if optimizer is not None:
        state = optimizer.state_dict()
        moments: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/", 2)
                moments.setdefault(int(index), {})[name] = value
        state["state"] = moments
        optimizer.load_state_dict(state)
        torch.set_rng_state(tensors["rng/torch"])
    return meta


def init_weights(model: PixelPlayer, package_dir: str | Path) -> None:
    """Start from a model package's weights (checked, no pickle); its nets must have the run's shapes."""
    from pixelsep_plugin.export.package import load_torch_model

    source = load_torch_model(package_dir)
    own, theirs = model.state_dict(), source.state_dict()
    wrong = [k for k in own if k not in theirs or theirs[k].shape != own[k].shape]
    if wrong or set(theirs) - set(own):
        raise ValueError(f"init_from {package_dir}: its nets differ from the run's (e.g. {(wrong or sorted(set(theirs) - set(own)))[0]})")
    model.load_state_dict(theirs, strict=True)


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device = \"cuda\" but torch sees no CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())


def _distributed(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def load_sets(
    folders: tuple[str, ...] | list[str],
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    cache: Path,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[CachedClip]:
    """The clips of every folder: sample packs read directly, folders of videos through the cache."""
    clips: list[CachedClip] = []
    for folder in folders:
        if is_pack(folder):
            clips += read_pack(folder, model_cfg.audio.sample_rate, model_cfg.video_net.frame_size,
                               cfg.frames_per_second, workers=max(4, workers))  # fmt: skip
        else:
            clips += load_clips(find_clips([folder]), model_cfg, cfg.frames_per_second, cache, workers, progress)
    return clips


def export_run(run: Path | str, out_dir: Path | str, card_text: str | None = None, metrics: dict | None = None) -> Path:
    """Write the run's checkpoint as a model package (ONNX + safetensors + manifest + card)."""
    from pixelsep_plugin.export.package import write_package

    run = Path(run)
    saved = json.loads((run / "config.json").read_text())
    cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["train"].items()})
    model_cfg = cfg.model_config()
    graph = MixAndSeparate(build_pixelplayer(model_cfg, seed=0), cfg.mask)
    meta = load_checkpoint(run, graph, None)
    training = {
        "steps": meta["step"],
        "mask": cfg.mask,
        "num_mix": cfg.num_mix,
        "batch_size": cfg.batch_size,
        "processes": meta.get("world_size", 1),
        "device": meta.get("device", "cpu"),
        "train_seconds": round(meta.get("train_seconds", 0.0)),
        "train_clips": meta.get("train_clips"),
        "seed": cfg.seed,
    }
    return write_package(
        graph.model.eval(),
        model_cfg,
        out_dir,
        cfg.model_id,
        cfg.model_version,
        trained=True,
        training=training,
        metrics=metrics or meta.get("last_validation"),
        card_text=card_text,
    )


def train(
    cfg: TrainConfig,
    steps: int | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    export: bool = True,
) -> Path:
    """Train (or resume) the run described by ``cfg`` up to ``steps`` (default ``cfg.steps``); returns the run folder."""
    device = _device(cfg)
    rank, world = _distributed(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = Path(cfg.run_dir)
    model_cfg = cfg.model_config()
    target_steps = min(steps or cfg.steps, cfg.steps)
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        config_doc = {"train": cfg.to_dict(), "model": model_cfg.to_dict()}
        existing = run / "config.json"
        if existing.is_file() and json.loads(existing.read_text())["model"] != json.loads(json.dumps(config_doc["model"])):
            raise ValueError(f"{run} holds a run of another model configuration: choose another run_dir")
        existing.write_text(json.dumps(config_doc, indent=1))
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    if rank == 0:  # decode once, in rank 0, with every core; the others wait and read the cache
        load_sets([d for d in cfg.train_dirs + cfg.val_dirs if not is_pack(d)], cfg, model_cfg, cache, workers=os.cpu_count() or 1,
                  progress=(lambda d, t: progress(0, target_steps, {"stage": "decode", "done": d, "total": t}))
                  if progress else None)  # fmt: skip
    if world > 1:
        dist.barrier()
    clips = load_sets(cfg.train_dirs, cfg, model_cfg, cache)
    rng = np.random.default_rng([cfg.seed, rank])
    per_clip = model_cfg.video_net.frames_per_window
    mixing = {"composite": cfg.composite, "reach_cells": model_cfg.video_net.click_reach_cells, "mix_sizes": cfg.mix_sizes}
    sampler = MixSampler(clips, model_cfg, cfg.num_mix, per_clip, tuple(cfg.gain_range), rng, **mixing)
    validator = None
    if rank == 0 and cfg.val_dirs:
        val_clips = load_sets(cfg.val_dirs, cfg, model_cfg, cache)
        val_sampler = MixSampler(val_clips, model_cfg, cfg.num_mix, per_clip, (1.0, 1.0), np.random.default_rng(12345), **mixing)
        validator = Validator(val_sampler, cfg.val_mixes, cfg.batch_size, model_cfg)

    model = build_pixelplayer(model_cfg, seed=cfg.seed)
    if cfg.init_from and not has_checkpoint(run):
        init_weights(model, cfg.init_from)
    graph = MixAndSeparate(model, cfg.mask).to(device)
    optimizer = _optimizer(graph, cfg)
    step, train_seconds, last_val = 0, 0.0, None
    if has_checkpoint(run):
        meta = load_checkpoint(run, graph, optimizer)
        step, train_seconds, last_val = meta["step"], meta.get("train_seconds", 0.0), meta.get("last_validation")
        if "numpy_rng" in meta and rank < len(meta["numpy_rng"]):
            rng.bit_generator.state = meta["numpy_rng"][rank]
    module: nn.Module = graph
    if world > 1:
        module = nn.parallel.DistributedDataParallel(graph, device_ids=[device] if device.type == "cuda" else None)
    graph.train()
    log = (run / LOG).open("a") if rank == 0 else None
    aug_rng = np.random.default_rng([cfg.seed, rank, step, 1])
    window_loss: list[float] = []
    done = _progress(step, train_seconds, cfg)
    try:
        while step < target_steps and done < 1.0:
            started = time.perf_counter()
            scale = _lr_scale(done, cfg)
            for group, base in zip(optimizer.param_groups, (cfg.video_learning_rate, cfg.learning_rate, cfg.learning_rate), strict=True):
                group["lr"] = base * scale
            batch: MixBatch = sampler.batch(cfg.batch_size)
            loss, _, _ = module(*graph_inputs(batch, aug_rng, device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            elapsed = time.perf_counter() - started
            train_seconds += elapsed
            window_loss.append(float(loss.detach()))
            done = _progress(step, train_seconds, cfg)
            if world > 1:  # rank 0's clock decides, so that every process stops at the same step
                shared = torch.tensor([done], dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
                dist.broadcast(shared, 0)
                done = float(shared)
            final = step == target_steps or done >= 1.0
            record: dict[str, Any] = {}
            if rank == 0 and (step % cfg.log_every == 0 or final):
                record = {"step": step, "loss": float(np.mean(window_loss)), "lr": cfg.learning_rate * scale,
                          "step_seconds": round(elapsed, 3), "train_seconds": round(train_seconds, 1)}  # fmt: skip
                window_loss = []
            if rank == 0 and (final or (validator is not None and step % cfg.val_every == 0)):
                recalibrate_batchnorm(graph, sampler, cfg.batchnorm_batches, cfg.batch_size)
            if validator is not None and (step % cfg.val_every == 0 or final):
                last_val = {"step": step, **validator(graph)}
                record = {**record, "step": step, **last_val}
            if record and log is not None:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if progress and rank == 0:
                progress(step, target_steps, record or {"loss": window_loss[-1] if window_loss else None})
            if rank == 0 and (step % cfg.checkpoint_every == 0 or final):
                states = [rng.bit_generator.state]
                save_checkpoint(run, graph, optimizer, {
                    "step": step, "train_seconds": train_seconds, "world_size": world, "device": str(device),
                    "train_clips": len(clips), "last_validation": last_val, "numpy_rng": states,
                })  # fmt: skip
    finally:
        if log is not None:
            log.close()
    if world > 1:
        dist.barrier()
    if export and rank == 0 and done >= 1.0:
        export_run(run, run / "model")
    if world > 1:
        dist.destroy_process_group()
    return run
