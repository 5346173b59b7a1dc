"""The ``pixelsep`` command: analyze, separate, render, remix, timeline, effects, swap, batch, heatmap, cache, info,
synth, train, eval, app.

``get_parser()`` builds the parser and ``main(argv)`` runs a command in-process and returns the exit
status (0 ok, 1 a problem with the input or environment, 2 bad usage). Problems are reported as one
line on stderr, before any heavy work when the arguments alone show them.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from host_bridge.cli import app, batch, cache, edit, effects, evaluate, swap, synth, train
from host_bridge.cli.outputs import check_folder, check_outputs, note_sound_offset
from host_bridge.cli.progress import ProgressBar
from host_bridge.cli.sources import SourceSpec, build_sources, check_sources, check_time_has_sound
from pixelsep_plugin import __version__
from pixelsep_plugin.errors import InputError, PixelsepError

if TYPE_CHECKING:
    from pixelsep_plugin import media

PROG = "pixelsep"
_default_show_warning = warnings.showwarning


class _PartAction(argparse.Action):
    """Keeps --at, --box and --name in the order given, in one list."""

    def __call__(self, parser, namespace, values, option_string=None):
        specs = getattr(namespace, "specs", None) or []
        specs.append(SourceSpec(kind=self.dest, text=values))
        namespace.specs = specs


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model folder or id (default: the shipped default model)")
    parser.add_argument("--cache-dir", type=Path, help="where analyses are kept (default: ~/.cache/pixelsep)")
    parser.add_argument("--no-cache", action="store_true", help="analyse again and keep nothing")
    parser.add_argument("--threads", type=int, help="CPU threads for the nets (default: all cores)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Click a performer in a video, get their sound as its own track."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="show the model, the runtime and its providers")
    info.add_argument("--model", help="model folder or id")

    synth.add_parser(commands)
    train.add_parser(commands)
    evaluate.add_parser(commands)

    analyze = commands.add_parser("analyze", help="analyse a clip once (later clicks are instant)")
    analyze.add_argument("clip", type=Path)
    _add_model_options(analyze)

    sep = commands.add_parser(
        "separate",
        help="write one stem per clicked source plus the residual",
        description=(
            "Each --at or --box starts a new source, named by the --name that follows it (default "
            "source1, source2, ...). Points and boxes given the same --name are one source."
        ),
    )
    sep.add_argument("clip", type=Path)
    sep.add_argument(
        "--at",
        dest="point",
        action=_PartAction,
        metavar="X,Y[@T]",
        help="a point in video pixels (origin top-left) at T seconds (default 0)",
    )
    sep.add_argument(
        "--box", dest="box", action=_PartAction, metavar="X0,Y0,X1,Y1[@T]", help="a box in video pixels at T seconds"
    )
    sep.add_argument("--name", dest="name", action=_PartAction, metavar="NAME", help="name of the source just given")
    sep.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    sep.add_argument("--format", choices=("wav", "flac"), default="wav", help="stem file format (default wav)")
    sep.add_argument(
        "--high-band",
        choices=("extend", "residual"),
        default="extend",
        help="what happens above 5.5 kHz, where the nets see nothing (default extend)",
    )
    sep.add_argument("--no-residual", action="store_true", help="do not write the residual")
    sep.add_argument("--force", action="store_true", help="replace stem files that exist already")
    sep.add_argument(
        "--span",
        type=_span,
        metavar="START:END",
        help="render only START to END seconds: the files (named as without it) then hold just that span",
    )
    sep.add_argument(
        "--recipe",
        metavar="NAME.json",
        help="also write the edit as a recipe (NAME.json beside the stems) for `pixelsep render` and other hosts",
    )
    _add_model_options(sep)

    edit.add_parsers(commands, _add_model_options, _PartAction)
    swap.add_parser(commands)
    effects.add_parser(commands)
    batch.add_parser(commands)
    cache.add_parser(commands)
    app.add_parser(commands)

    heat = commands.add_parser("heatmap", help="draw where the sound comes from over a frame (PNG)")
    heat.add_argument("clip", type=Path)
    heat.add_argument("--at", dest="time", type=float, default=0.0, metavar="T", help="time in seconds (default 0)")
    heat.add_argument("-o", "--out", type=Path, required=True, help="PNG file to write")
    heat.add_argument("--force", action="store_true", help="replace the PNG file if it exists already")
    _add_model_options(heat)
    return parser


def _probe_clip(clip: Path) -> media.MediaInfo:
    """The clip's streams; a clip without sound or picture is refused here, before any model loads."""
    from pixelsep_plugin import media

    info = media.probe(clip)
    media.require_audio(info)
    media.require_video(info)
    return info


def _load_and_analyse(args):
    """Load the model (warning when it is untrained) and analyse the clip: (separator, analysis)."""
    from pixelsep_plugin.api import Separator

    separator = Separator(args.model, threads=args.threads, cache_root=args.cache_dir, use_cache=not args.no_cache)
    if not separator.package.trained:
        print(
            f"warning: model {separator.package.model_id} is UNTRAINED (random weights): the stems show the "
            "pipeline working, not a real separation",
            file=sys.stderr,
        )
    bar = ProgressBar("analysing", enabled=not args.quiet)
    started = time.perf_counter()
    try:
        analysis, cached = separator.analyze(args.clip, progress=bar.update)
    finally:
        bar.close()
    note = "from cache" if cached else f"in {time.perf_counter() - started:.1f} s"
    print(f"analysis of {args.clip.name} ({analysis.duration_seconds:.1f} s) {note}")
    return separator, analysis


def cmd_info(args) -> int:
    import numpy
    import onnxruntime

    from pixelsep_plugin import media
    from pixelsep_plugin.modelstore import load_package
    from pixelsep_plugin.modelstore.registry import available_models, resolve_model
    from pixelsep_plugin.runtime.sessions import choose_providers

    print(f"pixelsep {__version__}")
    print(f"numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}, av {media.av_version()}")
    print(f"providers: {', '.join(choose_providers())} (available: {', '.join(onnxruntime.get_available_providers())})")
    models = available_models()
    print(f"installed models: {', '.join(sorted(models)) or 'none'}")
    package = load_package(resolve_model(args.model))
    cfg = package.config
    print(
        f"model: {package.model_id} {package.version} ({'trained' if package.trained else 'UNTRAINED'}), "
        f"config {cfg.name}, K={cfg.num_components}, {package.path}"
    )
    print(f"model checksum: {package.checksum}")
    return 0


def cmd_analyze(args) -> int:
    _probe_clip(args.clip)
    _load_and_analyse(args)
    return 0


def _span(text: str) -> tuple[float, float]:
    """``START:END`` in seconds -> (start, end); END must be after START."""
    try:
        start_text, end_text = text.split(":")
        start, end = float(start_text), float(end_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a span is START:END in seconds, e.g. 10:20; not {text!r}") from None
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise argparse.ArgumentTypeError(f"a span needs 0 <= START < END; got {text!r}")
    return start, end


def cmd_separate(args) -> int:
    from pixelsep_plugin.api import write_stems

    info = _probe_clip(args.clip)
    sources = build_sources(getattr(args, "specs", None) or [])
    check_sources(sources, info)
    if args.recipe is not None:
        from pixelsep_plugin.recipe import check_name

        if Path(args.recipe).name != args.recipe or not args.recipe.lower().endswith(".json"):
            raise InputError(f"--recipe is a file name ending in .json, written beside the stems; not {args.recipe!r}")
        for source in sources:
            check_name(source.name)
    check_folder(args.out, "-o")
    names = [source.name for source in sources] + ([] if args.no_residual else ["residual"])
    outputs = [args.out / f"{args.clip.stem}.{name}.{args.format}" for name in names]
    check_outputs(outputs + ([args.out / args.recipe] if args.recipe else []), args.force)
    separator, analysis = _load_and_analyse(args)
    started = time.perf_counter()
    from pixelsep_plugin.recipe import on_sound_clock

    note_sound_offset(args.clip.name, info.audio_offset_seconds)
    separation = separator.separate(analysis, on_sound_clock(sources, info.audio_offset_seconds), high_band=args.high_band)
    bar = ProgressBar("writing", enabled=not args.quiet)
    try:
        files = write_stems(
            separation,
            args.out,
            args.clip.stem,
            args.format,
            residual=not args.no_residual,
            protect=[args.clip],
            progress=bar.update,
            span_seconds=args.span,
        )
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    print(
        f"separated {len(sources)} source(s) in {seconds:.2f} s at {analysis.sample_rate} Hz, "
        f"{analysis.channel_layout}:"
    )
    for name, path in files.stems.items():
        print(f"  {name}: {path}")
    if files.residual is not None:
        print(f"  residual: {files.residual}")
    if args.recipe is not None:
        from pixelsep_plugin import recipe as rcp

        output = rcp.OutputSettings(
            folder=".", prefix=args.clip.stem if rcp.document.NAME_PATTERN.match(args.clip.stem) else "",
            format=args.format, high_band=args.high_band, residual=not args.no_residual,
        )  # fmt: skip
        clip = rcp.clip_ref(args.clip, sha256=analysis.meta["clip"]["sha256"])
        recipe = rcp.new_recipe(clip, separator.package.model_id, separator.package.checksum, sources, output)
        print(f"  recipe: {rcp.save(recipe, args.out / args.recipe)}")
    return 0


def cmd_heatmap(args) -> int:
    from pixelsep_plugin import media
    from pixelsep_plugin.runtime.heatmap import overlay

    info = _probe_clip(args.clip)
    check_time_has_sound(args.time, info)
    if args.out.suffix.lower() != ".png":
        raise InputError(f"heatmap output must be a .png file, not {args.out.name}")
    check_folder(args.out.parent, "output folder")
    check_outputs([args.out], args.force)
    separator, analysis = _load_and_analyse(args)
    engine_time = min(max(args.time - info.audio_offset_seconds, 0.0), analysis.duration_seconds)  # the sound's clock
    energy = separator.energy_map(analysis, engine_time)
    frame = media.read_frame(args.clip, engine_time)
    media.write_png(args.out, overlay(frame, energy))
    print(f"heatmap at {args.time:g} s (energy share {energy.min():.2f}-{energy.max():.2f}): {args.out}")
    return 0


COMMANDS = {
    "info": cmd_info,
    "analyze": cmd_analyze,
    "separate": cmd_separate,
    "heatmap": cmd_heatmap,
    "render": edit.run_render,
    "remix": edit.run_remix,
    "timeline": edit.run_timeline,
    "batch": batch.run,
    "cache": cache.run,
    "swap": swap.run,
    "effects": effects.run,
    "synth": synth.run,
    "train": train.run,
    "eval": evaluate.run,
    "app": app.run,
}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings about the user's material (an effect that found nothing to do) as one line; others as Python prints them."""
    from pixelsep_plugin.errors import PixelsepWarning

    if issubclass(category, PixelsepWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _default_show_warning(message, category, filename, lineno, file, line)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every temporary file is removed on the way out."""


def _terminate(signum, frame) -> None:
    raise _Terminated()


def _interrupted(interrupt: KeyboardInterrupt) -> int:
    if isinstance(interrupt, _Terminated):
        print(f"{PROG}: stopped (terminated); nothing was left half-written", file=sys.stderr)
        return 143
    print(f"{PROG}: interrupted; nothing was left half-written", file=sys.stderr)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except PixelsepError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    except Exception as error:  # a library that turned the interrupt into its own error (an import, a callback)
        cause = error.__cause__ or error.__context__
        if isinstance(cause, KeyboardInterrupt):
            return _interrupted(cause)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    main_entry()
