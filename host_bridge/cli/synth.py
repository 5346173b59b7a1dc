"""``pixelsep synth``: synthetic performances for training and evaluation."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from host_bridge.cli.progress import ProgressBar
from pixelsep_plugin.errors import InputError


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, not {text!r}") from None
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"size must be even and at least 64x64, not {text}")
    return width, height


def add_parser(commands) -> None:
    synth = commands.add_parser(
        "synth",
        help="generate synthetic performances (mp4 + per-performer stems + boxes)",
        description=(
            "Writes NAME.mp4 (H.264 + AAC 44.1 kHz stereo), one NAME.<instrument>.flac stem per "
            "performer and NAME.json (the sidecar with every performer's box per frame). Clips that "
            "are already complete in the folder are kept, so an interrupted run can be resumed."
        ),
    )
    synth.add_argument("kind", choices=("solo", "duet", "trio"))
    synth.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    synth.add_argument("--split", choices=("train", "val", "test"), default="train", help="melodies and seeds of this split")
    amount = synth.add_mutually_exclusive_group(required=True)
    amount.add_argument("--count", type=int, help="number of clips")
    amount.add_argument("--minutes", type=float, help="total footage in minutes")
    synth.add_argument("--seconds", type=float, default=12.0, help="length of each clip (default 12)")
    synth.add_argument("--start", type=int, default=0, help="index of the first clip (to extend a set)")
    synth.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="frame size (default 320x240)")
    synth.add_argument("--fps", type=int, default=24, help="frame rate (default 24)")
    synth.add_argument("--instruments", help="comma-separated instrument names (default: all 24 that the condition can draw and play)")
    synth.add_argument(
        "--condition", default="train", choices=("train", "classic", "heldout-style", "heldout-sound", "real"),
        help="picture styles and sound families: train (all training styles and sounds, recording chain), "
        "classic (Noto + FluidR3 only), heldout-style (Emoji One pictures), heldout-sound (TimGM6mb), "
        "real (recorded phrases from sonic-pi-samples); default train",
    )  # fmt: skip
    synth.add_argument("--styles", help="comma-separated picture styles (overrides the condition's)")
    synth.add_argument("--sounds", help="comma-separated sound families (overrides the condition's)")
    synth.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    synth.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args) -> int:
    from pixelsep_plugin.synth import pictures, sounds
    from pixelsep_plugin.synth.generate import CONDITIONS, SynthSettings, generate_set
    from pixelsep_plugin.synth.instruments import get_instruments

    if args.seconds < 2:
        raise InputError(f"clips must last at least 2 s, not {args.seconds:g}")
    condition = dict(CONDITIONS[args.condition])
    if args.styles:
        condition["styles"] = tuple(args.styles.split(","))
    if args.sounds:
        condition["sounds"] = tuple(args.sounds.split(","))
    try:
        instruments = get_instruments(args.instruments.split(",") if args.instruments else None)
        pictures.check_styles(condition["styles"])
        sounds.check_families(condition["sounds"])
    except (ValueError, FileNotFoundError) as error:
        raise InputError(str(error)) from None
    count = args.count if args.count is not None else int(round(args.minutes * 60 / args.seconds))
    if count <= 0:
        raise InputError("nothing to generate: give a positive --count or --minutes")
    width, height = args.size
    settings = SynthSettings(width=width, height=height, fps=args.fps, seconds=args.seconds, **condition)
    bar = ProgressBar(f"{args.kind} x{count}", enabled=not args.quiet)
    started = time.perf_counter()
    try:
        generate_set(
            args.out,
            args.kind,
            args.split,
            count,
            settings,
            instruments,
            workers=max(1, args.workers),
            start=args.start,
            progress=lambda done, total: bar.update("clips", done, total),
        )
    except ValueError as error:
        raise InputError(str(error)) from None
    finally:
        bar.close()
    minutes = count * args.seconds / 60
    print(f"{count} {args.kind} clips ({minutes:.1f} min, {args.split}) in {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0
