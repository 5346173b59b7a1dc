"""The trainer: config files, learning on a tiny world, resume, torchrun, export."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from synth_fixtures import TINY_MODEL

from pixelsep_plugin.train.config import TrainConfig, load_train_config
from pixelsep_plugin.train.data import MixSampler, find_clips, load_clips
from pixelsep_plugin.train.loop import MixAndSeparate, Validator, train

REPO = Path(__file__).resolve().parents[1]


def tiny_config(world: dict[str, Path], run: Path, **extra) -> TrainConfig:
    settings = dict(
        run_dir=str(run),
        train_dirs=(str(world["train"]),),
        val_dirs=(str(world["val"]),),
        model_overrides=TINY_MODEL,
        model_id="tiny-test",
        batch_size=4,
        steps=60,
        learning_rate=3e-3,
        video_learning_rate=3e-3,
        lr_drop_at=(),
        val_every=60,
        val_mixes=8,
        checkpoint_every=10,
        cache_dir=str(run.parent / "sample-cache"),
        frames_per_second=1.0,
        threads=2,
    )
    settings.update(extra)
    return TrainConfig(**settings)


def write_toml(path: Path, cfg: TrainConfig) -> Path:
    def value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    path.write_text("\n".join(f"{k} = {value(v)}" for k, v in cfg.to_dict().items()) + "\n")
    return path


def test_config_file_relative_paths_and_errors(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "run.toml"
    path.write_text('run_dir = "runs/a"\ntrain_dirs = ["../data"]\nmodel_overrides = {num_components = 8}\n')
    cfg = load_train_config(path)
    assert cfg.run_dir == str(tmp_path / "conf" / "runs" / "a")
    assert cfg.train_dirs == (str(tmp_path / "conf" / "../data"),)
    model = cfg.model_config()
    assert model.num_components == model.video_net.num_components == model.audio_net.num_components == 8
    path.write_text("batch = 3\n")
    with pytest.raises(ValueError, match="unknown training setting 'batch'"):
        load_train_config(path)
    with pytest.raises(ValueError, match="unknown field 'depth'"):
        TrainConfig(model_overrides={"audio_net": {"depth": 3}}).model_config()
    with pytest.raises(ValueError, match="mask must be"):
        TrainConfig(mask="soft")


def test_mixes_never_pair_the_same_instrument(tiny_world, tmp_path):
    cfg = tiny_config(tiny_world, tmp_path / "run")
    model_cfg = cfg.model_config()
    clips = load_clips(find_clips(cfg.train_dirs), model_cfg, 1.0, Path(cfg.cache_dir))
    assert sorted({c.label for c in clips}) == ["drum", "flute"]
    sampler = MixSampler(clips, model_cfg, 2, 1, (1.0, 1.0), np.random.default_rng(0))
    batch = sampler.batch(16)
    assert batch.audio.shape == (16, 2, 127 * 256)
    assert batch.frames.shape[:3] == (16, 2, 1)
    for members in batch.clips:
        assert clips[members[0]].label != clips[members[1]].label


def _validation(cfg: TrainConfig, graph: MixAndSeparate) -> dict:
    model_cfg = cfg.model_config()
    clips = load_clips(find_clips(cfg.val_dirs), model_cfg, cfg.frames_per_second, Path(cfg.cache_dir))
    sampler = MixSampler(clips, model_cfg, 2, 1, (1.0, 1.0), np.random.default_rng(12345))
    return Validator(sampler, cfg.val_mixes, cfg.batch_size, model_cfg)(graph)


def test_tiny_model_learns_within_a_minute(tiny_world, tmp_path):
    from pixelsep_plugin.nets.builders import build_pixelplayer
    from pixelsep_plugin.train.loop import load_checkpoint

    # a set this small cannot generalise to other melodies: measured on fixed mixes of its own clips
    cfg = tiny_config(tiny_world, tmp_path / "run", val_dirs=(str(tiny_world["train"]),), steps=100, val_every=100)
    before = _validation(cfg, MixAndSeparate(build_pixelplayer(cfg.model_config(), seed=cfg.seed), cfg.mask))
    run = train(cfg, export=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2]), losses
    graph = MixAndSeparate(build_pixelplayer(cfg.model_config()), cfg.mask)
    load_checkpoint(run, graph, None)
    after = _validation(cfg, graph)
    assert after["val_loss"] < before["val_loss"]
    assert after["val_sdr"] > before["val_sdr"] and after["val_nsdr"] > before["val_nsdr"] + 1.5, (before, after)
    assert log[-1]["val_sdr"] == pytest.approx(after["val_sdr"], abs=1e-4)


def test_resume_continues_where_it_stopped(tiny_world, tmp_path):
    from pixelsep_plugin.modelstore import load_package

    cfg = tiny_config(tiny_world, tmp_path / "run", steps=6, val_every=3, log_every=1, checkpoint_every=2)
    train(cfg, steps=3)
    meta = json.loads((Path(cfg.run_dir) / "checkpoint.json").read_text())
    assert meta["step"] == 3 and not (Path(cfg.run_dir) / "model").exists()
    run = train(cfg)
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6 and 4 in steps
    package = load_package(run / "model")  # written after the last step, checked on load
    assert package.model_id == "tiny-test" and package.manifest["training"]["steps"] == 6
    assert package.manifest["trained"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_processes(tiny_world, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    cfg = tiny_config(tiny_world, tmp_path / "ddp", steps=4, val_every=4, log_every=1, threads=1)
    config = write_toml(tmp_path / "ddp.toml", cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", str(_free_port()), "-m", "pixelsep_plugin.train",
         str(config), "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((Path(cfg.run_dir) / "checkpoint.json").read_text())
    assert meta["step"] == 4 and meta["world_size"] == 2
    # the two processes trained one model: the weights moved from their seeded start
    from safetensors.torch import load_file

    from pixelsep_plugin.nets.builders import build_pixelplayer

    start = build_pixelplayer(cfg.model_config(), seed=cfg.seed).state_dict()
    trained = {}
    for name in meta["files"]:
        trained.update(load_file(str(Path(cfg.run_dir) / name)))
    assert not torch.equal(trained["model/synthesizer.alpha"], start["synthesizer.alpha"])


def test_train_cli_errors(tmp_path, capsys):
    from host_bridge.cli.main import main

    assert main(["train", str(tmp_path / "missing.toml")]) == 1
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('mask = "soft"\n')
    assert main(["train", str(bad)]) == 1
    assert "mask must be" in capsys.readouterr().err


def test_sample_packs_carry_the_decoded_samples(tiny_world, tmp_path):
    from host_bridge.cli.main import main

    cfg = tiny_config(tiny_world, tmp_path / "run", steps=3, val_every=3, val_mixes=4)
    toml = write_toml(tmp_path / "tiny.toml", cfg)
    assert main(["train", str(toml), "--write-packs", str(tmp_path / "packs"), "-q"]) == 0
    packs = tmp_path / "packs"
    assert sorted(p.name for p in packs.iterdir()) == ["train-0", "val-0"]
    model_cfg = cfg.model_config()
    originals = load_clips(find_clips([tiny_world["train"]]), model_cfg, 1.0, Path(cfg.cache_dir))
    from pixelsep_plugin.train.pack import read_pack

    packed = read_pack(packs / "train-0", model_cfg.audio.sample_rate, model_cfg.video_net.frame_size, 1.0)
    source_size = sum(p.stat().st_size for p in tiny_world["train"].glob("*.mp4"))
    assert sum(p.stat().st_size for p in (packs / "train-0").iterdir()) < source_size / 3
    assert [c.label for c in packed] == [c.label for c in originals]
    for a, b in zip(originals, packed, strict=True):
        assert b.audio.shape == a.audio.shape and b.frames.shape == a.frames.shape
        np.testing.assert_array_equal(a.frame_times, b.frame_times)
        error = np.sum((a.audio - b.audio) ** 2) / np.sum(a.audio**2)
        assert error < 0.05  # lossy, but the same sound (>13 dB SNR)
        assert np.abs(a.frames.astype(float) - b.frames).mean() < 8
    with pytest.raises(ValueError, match="frames_per_second"):
        read_pack(packs / "train-0", model_cfg.audio.sample_rate, model_cfg.video_net.frame_size, 2.0)
    packed_cfg = tiny_config(tiny_world, tmp_path / "packed-run", steps=3, val_every=3, val_mixes=4,
                             train_dirs=(str(packs / "train-0"),), val_dirs=(str(packs / "val-0"),),
                             cache_dir=str(tmp_path / "unused-cache"))  # fmt: skip
    run = train(packed_cfg)
    assert (run / "model" / "manifest.json").is_file() and not (tmp_path / "unused-cache").exists()
    assert json.loads((run / "checkpoint.json").read_text())["device"] == "cpu"


def test_composite_mixes_click_each_clip_inside_its_own_slot(tiny_world, tmp_path):
    from pixelsep_plugin.train.data import click_cells

    cfg = tiny_config(tiny_world, tmp_path / "run")
    model_cfg = cfg.model_config()
    clips = load_clips(find_clips(cfg.train_dirs), model_cfg, 1.0, Path(cfg.cache_dir))
    assert all(c.boxes is not None and np.isfinite(c.boxes).all() for c in clips)  # from the sidecars
    height, width = clips[0].frames.shape[1:3]
    for clip in clips:  # unlabelled footage (as from a folder of real videos) mixes by threes too
        clip.label = None
    sampler = MixSampler(clips, model_cfg, 2, 2, (1.0, 1.0), np.random.default_rng(0), composite=True, reach_cells=1, mix_sizes=(2, 3))
    sizes = set()
    for _ in range(6):
        batch = sampler.batch(4)
        b, n = batch.audio.shape[:2]
        sizes.add(n)
        h, w = -(-height // 16), -(-width // 16)
        assert batch.frames.shape == (b, 1, 2, height, width, 3)
        assert batch.cells.shape == (b, n, 2, h, w)
        counts = batch.cells.sum(axis=(3, 4))
        assert counts.min() >= 4 and counts.max() <= 9  # a 3x3 square of cells, clipped at the edges
        # the clips' clicks are in different places: their centres are at least a cell apart
        for item in range(b):
            centres = [np.argwhere(batch.cells[item, j, 0]).mean(axis=0) for j in range(n)]
            gaps = [np.abs(centres[i] - centres[j]).max() for i in range(n) for j in range(i + 1, n)]
            assert min(gaps) >= 1.0, centres
    assert sizes == {2, 3}
    # the runtime's reading of a click: the cell under the point and its neighbours
    assert click_cells(0, 0, 208, 160, 1) == (0, 0, 0, 2, 0, 2)
    assert click_cells(207, 159, 208, 160, 2) == (9, 12, 7, 10, 10, 13)


def test_composite_training_learns(tiny_world, tmp_path):
    """Train as you click: the tiny model's loss falls and separation on composite mixes improves."""
    from pixelsep_plugin.nets.builders import build_pixelplayer
    from pixelsep_plugin.train.loop import load_checkpoint

    overrides = {**TINY_MODEL, "video_net": {**TINY_MODEL["video_net"], "click_reach_cells": 1}}
    cfg = tiny_config(tiny_world, tmp_path / "run", val_dirs=(str(tiny_world["train"]),), steps=100, val_every=100,
                      composite=True, model_overrides=overrides)  # fmt: skip
    model_cfg = cfg.model_config()

    def validation(graph):
        clips = load_clips(find_clips(cfg.val_dirs), model_cfg, 1.0, Path(cfg.cache_dir))
        sampler = MixSampler(clips, model_cfg, 2, 1, (1.0, 1.0), np.random.default_rng(12345), composite=True, reach_cells=1)
        return Validator(sampler, cfg.val_mixes, cfg.batch_size, model_cfg)(graph)

    before = validation(MixAndSeparate(build_pixelplayer(model_cfg, seed=cfg.seed), cfg.mask))
    run = train(cfg, export=True)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2]), losses
    graph = MixAndSeparate(build_pixelplayer(model_cfg), cfg.mask)
    load_checkpoint(run, graph, None)
    after = validation(graph)
    assert after["val_loss"] < before["val_loss"]
    assert after["val_nsdr"] > before["val_nsdr"] + 1.5, (before, after)
    # the exported model tells the runtime how it was trained to be clicked
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    assert manifest["config"]["video_net"]["click_reach_cells"] == 1


def test_init_from_starts_at_a_packages_weights(tiny_world, tmp_path):
    from pixelsep_plugin.export.package import load_torch_model

    first = train(tiny_config(tiny_world, tmp_path / "a", steps=2, val_dirs=(), checkpoint_every=1))
    cfg = tiny_config(tiny_world, tmp_path / "b", steps=1, val_dirs=(), learning_rate=0.0, video_learning_rate=0.0,
                      weight_decay=0.0, init_from=str(first / "model"), batchnorm_batches=0)  # fmt: skip
    second = train(cfg)
    a, b = load_torch_model(first / "model").state_dict(), load_torch_model(second / "model").state_dict()
    for name in a:
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(a[name], b[name]), name
    with pytest.raises(ValueError, match="its nets differ"):
        other = {**TINY_MODEL, "num_components": 4}
        train(tiny_config(tiny_world, tmp_path / "c", steps=1, val_dirs=(), model_overrides=other, init_from=str(first / "model")))


def test_export_with_a_card(tiny_world, tmp_path, capsys):
    from host_bridge.cli.main import main
    from pixelsep_plugin.modelstore import load_package

    cfg = tiny_config(tiny_world, tmp_path / "run", steps=1, val_dirs=())
    train(cfg, export=False)
    config = write_toml(tmp_path / "run.toml", cfg)
    card = tmp_path / "CARD.md"
    card.write_text("# tiny-test\n\nMeasured on nothing at all.\n")
    assert main(["train", str(config), "--card", str(card)]) == 1
    assert "--card goes with --export" in capsys.readouterr().err
    assert main(["train", str(config), "--export", str(tmp_path / "pkg"), "--card", str(tmp_path / "none.md")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["train", str(config), "--export", str(tmp_path / "pkg"), "--card", str(card)]) == 0
    package = load_package(tmp_path / "pkg")  # the card is checksummed with the rest
    assert (package.path / "CARD.md").read_text() == card.read_text()


def test_checkpoints_are_split_into_small_files_and_resume(tiny_world, tmp_path, monkeypatch):
    from pixelsep_plugin.train import loop

    monkeypatch.setattr(loop, "CHECKPOINT_SHARD_BYTES", 64 * 1024)
    cfg = tiny_config(tiny_world, tmp_path / "run", steps=4, val_dirs=(), checkpoint_every=2, log_every=1)
    run = Path(cfg.run_dir)
    train(cfg, steps=2, export=False)
    meta = json.loads((run / "checkpoint.json").read_text())
    files = sorted(p.name for p in run.glob("checkpoint-*.safetensors"))
    assert meta["step"] == 2 and len(meta["files"]) > 1 and files == sorted(meta["files"])
    assert all(name.startswith("checkpoint-0000002-") for name in files)
    moved = tmp_path / "elsewhere"  # a run folder copied to another place resumes there
    shutil.copytree(run, moved)
    train(tiny_config(tiny_world, moved, steps=4, val_dirs=(), checkpoint_every=2, log_every=1), export=False)
    meta = json.loads((moved / "checkpoint.json").read_text())
    assert meta["step"] == 4 and sorted(p.name for p in moved.glob("checkpoint-*.safetensors")) == sorted(meta["files"])
    assert all(name.startswith("checkpoint-0000004-") for name in meta["files"])  # the step-2 files are gone
    # a run saved as one checkpoint.safetensors (before the split) still loads
    from safetensors.torch import load_file, save_file

    tensors = {}
    for name in meta["files"]:
        tensors.update(load_file(str(moved / name)))
        (moved / name).unlink()
    save_file(tensors, str(moved / "checkpoint.safetensors"))
    del meta["files"]
    (moved / "checkpoint.json").write_text(json.dumps(meta))
    from pixelsep_plugin.nets.builders import build_pixelplayer

    graph = MixAndSeparate(build_pixelplayer(cfg.model_config()), cfg.mask)
    assert loop.load_checkpoint(moved, graph, None)["step"] == 4
    for name, value in graph.model.state_dict().items():
        assert torch.equal(value, tensors[f"model/{name}"]), name
