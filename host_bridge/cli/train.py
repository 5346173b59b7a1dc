"""``pixelsep train``: mix-and-separate training from a config file; resumes a run that exists."""

from __future__ import annotations

import os
from pathlib import Path

from host_bridge.cli.progress import ProgressBar
from pixelsep_plugin.errors import InputError


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a model on folders of clips (needs the [train] extra: torch)",
        description=(
            "Trains the run described by CONFIG (.toml or .json; see docs/training.md), resuming from "
            "its checkpoint when the run folder has one, and writes the model package RUN_DIR/model "
            "when the last step is done. Several processes: torchrun --nproc_per_node N -m "
            "pixelsep_plugin.train CONFIG."
        ),
    )
    train.add_argument("config", type=Path)
    train.add_argument("--steps", type=int, help="stop after this step (a later run resumes)")
    train.add_argument("--run-dir", help="override the config's run_dir")
    train.add_argument("--export", type=Path, metavar="DIR", help="only write the run's checkpoint as a model package to DIR")
    train.add_argument("--card", type=Path, metavar="FILE", help="with --export: the package's CARD.md (default: a generated card)")
    train.add_argument(
        "--write-packs", type=Path, metavar="DIR",
        help="only decode the config's train and val folders into sample packs under DIR (DIR/train-N, DIR/val-N) "
        "that a config on another machine can name instead of the videos",
    )  # fmt: skip
    train.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputError("training needs torch: pip install 'pixelsep[train]'") from None
    from pixelsep_plugin.train.config import load_train_config
    from pixelsep_plugin.train.loop import export_run, has_checkpoint, train

    if not args.config.is_file():
        raise InputError(f"config {args.config} not found")
    try:
        cfg = load_train_config(args.config, run_dir=args.run_dir)
    except (ValueError, KeyError) as error:
        raise InputError(f"{args.config.name}: {error}") from None
    if args.card and not args.export:
        raise InputError("--card goes with --export DIR")
    if args.card and not args.card.is_file():
        raise InputError(f"card {args.card} not found")
    if args.export:
        if not has_checkpoint(Path(cfg.run_dir)):
            raise InputError(f"{cfg.run_dir} has no checkpoint to export")
        card = args.card.read_text(encoding="utf-8") if args.card else None
        print(f"model package: {export_run(cfg.run_dir, args.export, card_text=card)}")
        return 0
    if args.write_packs:
        return _write_packs(cfg, args.write_packs, args.quiet)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    bar = ProgressBar("train", enabled=not args.quiet and rank0)

    def progress(step: int, total: int, record: dict) -> None:
        if record.get("stage") == "decode":
            bar.update("decode", record["done"], record["total"])
        else:
            bar.update("step", step, total)

    try:
        run_dir = train(cfg, steps=args.steps, progress=progress)
    except (ValueError, FileNotFoundError) as error:
        raise InputError(str(error)) from None
    finally:
        bar.close()
    if rank0:
        print(f"run: {run_dir} (log: {run_dir / 'log.jsonl'})")
        if (run_dir / "model" / "manifest.json").is_file():
            print(f"model package: {run_dir / 'model'}")
    return 0


def _write_packs(cfg, out: Path, quiet: bool) -> int:
    from pixelsep_plugin.train.data import default_cache_dir
    from pixelsep_plugin.train.loop import load_sets
    from pixelsep_plugin.train.pack import write_pack

    model_cfg = cfg.model_config()
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    sets = [(f"train-{i}", d) for i, d in enumerate(cfg.train_dirs)] + [(f"val-{i}", d) for i, d in enumerate(cfg.val_dirs)]
    for name, folder in sets:
        bar = ProgressBar(f"decode {Path(folder).name}", enabled=not quiet)
        try:
            clips = load_sets([folder], cfg, model_cfg, cache, workers=os.cpu_count() or 1,
                              progress=lambda d, t, bar=bar: bar.update("clips", d, t))  # fmt: skip
        except (ValueError, FileNotFoundError) as error:
            raise InputError(str(error)) from None
        finally:
            bar.close()
        bar = ProgressBar(f"pack {name}", enabled=not quiet)
        try:
            pack = write_pack(clips, out / name, model_cfg.audio.sample_rate, model_cfg.video_net.frame_size,
                              cfg.frames_per_second, progress=lambda d, t, bar=bar: bar.update("clips", d, t))  # fmt: skip
        finally:
            bar.close()
        size = sum(p.stat().st_size for p in pack.iterdir()) / 1e6
        print(f"{folder} -> {pack} ({len(clips)} clips, {size:.1f} MB)")
    return 0
