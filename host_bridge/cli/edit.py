"""``pixelsep render``, ``remix`` and ``timeline``: deliveries made from a recipe (the edit document).

``render RECIPE`` writes the stems and the remix (gains, mutes, solos) and, on request, the clip with
the remix as its sound (``--video``) and a multitrack file for editors (``--multitrack``). ``remix
CLIP`` is the one-command version: click, set gains, get a video (or an audio file) back. ``timeline
RECIPE`` renders the stems an editor needs and writes a timeline that references them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from host_bridge.cli.outputs import check_folder, check_outputs, note_replaced, note_sound_offset
from host_bridge.cli.progress import ProgressBar
from host_bridge.cli.sources import build_sources, check_sources
from pixelsep_plugin.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
MULTITRACK_SUFFIXES = (".mkv", ".mov")
AUDIO_SUFFIXES = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".opus": "opus", ".m4a": "aac"}


def _gain(text: str) -> tuple[str, float]:
    from pixelsep_plugin.recipe import parse_gain

    return parse_gain(text)


def _add_delivery_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="replace files that exist already (-o, --video, --multitrack)"
    )
    parser.add_argument(
        "--gain",
        action="append",
        default=[],
        metavar="NAME=DB",
        help="a source's (or residual's) gain in dB, e.g. trumpet=+6, residual=-12; -inf mutes (repeatable)",
    )
    parser.add_argument("--peaks", choices=("auto", "limit", "warn"), help="peaks above full scale: see README")
    parser.add_argument(
        "--tail",
        choices=("cut", "ring"),
        help="effect tails: cut at the clip's end or let them ring on (default: the recipe's)",
    )
    parser.add_argument(
        "--preset",
        choices=("cleanup",),
        help="cleanup: remove hum and hiss from every source and the rest, bring the sources to -23 LUFS, "
        "the rest down 12 dB (needs the cleanup extra)",
    )


def _apply_preset(recipe, preset: str | None):
    if preset is None:
        return recipe
    from pixelsep_plugin.effects.cleanup import cleanup_preset

    return cleanup_preset(recipe)


def add_parsers(commands, add_model_options, part_action) -> None:
    render = commands.add_parser(
        "render",
        help="render a recipe: stems, the remix, the video with its new sound, a multitrack file",
        description=(
            "Renders RECIPE's stems, residual and remix into its output folder (or -o). The clip must be the one "
            "the recipe was made on (same sha256): pass --relink PATH when it has moved."
        ),
    )
    render.add_argument("recipe", type=Path)
    render.add_argument("-o", "--out", type=Path, help="output folder (default: the recipe's output folder)")
    render.add_argument(
        "--format", choices=("wav", "flac", "mp3", "opus", "aac"), help="audio format (default: the recipe's)"
    )
    render.add_argument("--no-stems", action="store_true", help="only the remix")
    render.add_argument("--no-remix", action="store_true", help="only the stems")
    render.add_argument(
        "--video", type=Path, metavar="OUT", help="also the clip with the remix as its sound (.mp4/.mov/.mkv/.webm)"
    )
    render.add_argument(
        "--multitrack",
        type=Path,
        metavar="OUT",
        help="also a .mkv/.mov with the picture, the original sound, the remix and one track per stem",
    )
    render.add_argument("--relink", type=Path, metavar="PATH", help="the recipe's clip, moved to PATH")
    render.add_argument("--accept-changed-clip", action="store_true", help="render on a clip whose sha256 differs")
    render.add_argument("--accept-other-model", action="store_true", help="render with a model other than the recipe's")
    _add_delivery_options(render)
    add_model_options(render)

    remix = commands.add_parser(
        "remix",
        help="click, set gains, get the clip back with its new sound (one command)",
        description=(
            "Each --at or --box starts a source named by the --name that follows it. -o OUT.mp4 (.mov, .mkv, .webm) "
            "writes a copy of the clip with the remix as its sound (the picture is copied, not re-encoded); "
            "-o OUT.wav (.flac, .mp3, .opus, .m4a) writes the remix alone."
        ),
    )
    remix.add_argument("clip", type=Path)
    remix.add_argument(
        "--at", dest="point", action=part_action, metavar="X,Y[@T]", help="a point in video pixels at T seconds"
    )
    remix.add_argument("--box", dest="box", action=part_action, metavar="X0,Y0,X1,Y1[@T]", help="a box in video pixels")
    remix.add_argument("--name", dest="name", action=part_action, metavar="NAME", help="name of the source just given")
    remix.add_argument("-o", "--out", type=Path, required=True, help="the video (or audio file) to write")
    remix.add_argument("--recipe", type=Path, metavar="FILE.json", help="also save the edit as a recipe")
    _add_delivery_options(remix)
    add_model_options(remix)

    timeline = commands.add_parser(
        "timeline",
        help="write a timeline for an editor (.otio, .xml, .fcpxml, .kdenlive, .mlt, .xges) with one track per stem",
        description=(
            "Renders RECIPE's stems (float WAV, or --format flac) into its output folder when they are missing, then "
            "writes a timeline: the picture, the original sound (muted), one track per stem and the residual, with "
            "their gains."
        ),
    )
    timeline.add_argument("recipe", type=Path)
    timeline.add_argument(
        "-o", "--out", type=Path, required=True, help="the timeline file; its suffix picks the format"
    )
    timeline.add_argument("--format", choices=("wav", "flac"), default="wav", help="the stems' format (default wav)")
    timeline.add_argument("--force", action="store_true", help="replace a timeline file that exists already")
    timeline.add_argument("--relink", type=Path, metavar="PATH", help="the recipe's clip, moved to PATH")
    timeline.add_argument("--accept-changed-clip", action="store_true", help="use a clip whose sha256 differs")
    timeline.add_argument("--accept-other-model", action="store_true", help="use a model other than the recipe's")
    add_model_options(timeline)


def _check_writable_file(path: Path, suffixes, what: str, protect: Path | None = None) -> None:
    from pixelsep_plugin.media.encode import check_not_protected

    if path.suffix.lower() not in suffixes:
        raise InputError(f"{what} must end in {', '.join(suffixes)}, not {path.name}")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder: give a file name")
    if protect is not None:
        check_not_protected(path, (protect,))


def _open_recipe(args):
    """(recipe, separator): the recipe with the model it names (or --model), checked against its clip
    (whose sha256 the cache remembers when it has analysed this very file)."""
    from pixelsep_plugin import recipe as rcp
    from pixelsep_plugin.api import Separator

    recipe = rcp.load(args.recipe)
    rcp.check_clip(recipe, args.relink, accept_changed=True)  # a missing clip is one line before any model loads
    separator = Separator(
        args.model or recipe.model.id, threads=args.threads, cache_root=args.cache_dir, use_cache=not args.no_cache
    )
    rcp.check_model(recipe, separator.package.model_id, separator.package.checksum, args.accept_other_model)
    recipe = rcp.check_clip(recipe, args.relink, args.accept_changed_clip, digest=separator.clip_sha256)
    return recipe, separator


def _analyse(separator, clip: Path, quiet: bool):
    bar = ProgressBar("analysing", enabled=not quiet)
    started = time.perf_counter()
    try:
        analysis, cached = separator.analyze(clip, progress=bar.update)
    finally:
        bar.close()
    note = "from cache" if cached else f"in {time.perf_counter() - started:.1f} s"
    print(f"analysis of {clip.name} ({analysis.duration_seconds:.1f} s) {note}")
    return analysis


def _report(result) -> None:
    for name, path in result.stems.items():
        print(f"  {name}: {path}")
    for name, path in result.processed.items():
        print(f"  {name} through its effects: {path}")
    if result.residual is not None:
        print(f"  residual: {result.residual}")
    if result.remix is not None:
        print(f"  remix: {result.remix}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _deliver_videos(
    separator, analysis, recipe, video: Path | None, multitrack: Path | None, peaks: str, quiet: bool
) -> None:
    from pixelsep_plugin.api import write_multitrack_video, write_remix_video

    if video is not None:
        bar = ProgressBar("video", enabled=not quiet)
        try:
            written = write_remix_video(separator, analysis, recipe, video, peaks=peaks, progress=bar.update)
        finally:
            bar.close()
        print(f"  video: {written}")
    if multitrack is not None:
        bar = ProgressBar("tracks", enabled=not quiet)
        try:
            written = write_multitrack_video(separator, analysis, recipe, multitrack, peaks=peaks, progress=bar.update)
        finally:
            bar.close()
        print(f"  multitrack: {written}")


def run_render(args) -> int:
    from pixelsep_plugin import recipe as rcp
    from pixelsep_plugin.api import render_recipe

    gains = [_gain(g) for g in args.gain]
    if args.video is not None:
        _check_writable_file(args.video, VIDEO_SUFFIXES, "--video")
    if args.multitrack is not None:
        _check_writable_file(args.multitrack, MULTITRACK_SUFFIXES, "--multitrack")
    if args.no_stems and args.no_remix and not (args.video or args.multitrack):
        raise InputError("--no-stems and --no-remix leave nothing to render")
    recipe, separator = _open_recipe(args)
    recipe = _apply_preset(recipe, args.preset)
    if gains:
        recipe = rcp.apply_gains(recipe, gains)
    if args.tail:
        recipe.output.tail = args.tail
    for path in (args.video, args.multitrack):
        if path is not None:
            _check_writable_file(path, VIDEO_SUFFIXES, "output", protect=recipe.clip.path)
    out_dir = args.out or rcp.output_folder(recipe, args.recipe)
    planned = []
    if not (args.no_stems and args.no_remix):
        check_folder(out_dir, "output folder")
        from pixelsep_plugin.recipe.render import planned_outputs

        planned = list(planned_outputs(recipe, out_dir, not args.no_stems, not args.no_remix, args.format).values())
    # the recipe's own output folder holds its renders, made again on every render (said in one line);
    # files in a folder given with -o, and the videos named here, are replaced only with --force
    check_outputs((planned if args.out else []) + [p for p in (args.video, args.multitrack) if p], args.force)
    if not args.out:
        note_replaced(planned)
    analysis = _analyse(separator, recipe.clip.path, args.quiet)
    peaks = args.peaks or recipe.output.peaks
    started = time.perf_counter()
    if not (args.no_stems and args.no_remix):
        note_sound_offset(recipe.clip.path.name, recipe.clip.audio_offset_seconds)
        bar = ProgressBar("writing", enabled=not args.quiet)
        try:
            result = render_recipe(
                separator, analysis, recipe, out_dir, stems=not args.no_stems, remix=not args.no_remix,
                audio_format=args.format, peaks=peaks, progress=bar.update,
            )  # fmt: skip
        finally:
            bar.close()
        print(
            f"rendered {len(recipe.sources)} source(s) in {time.perf_counter() - started:.2f} s at {analysis.sample_rate} Hz, {analysis.channel_layout}:"
        )
        _report(result)
    _deliver_videos(separator, analysis, recipe, args.video, args.multitrack, peaks, args.quiet)
    return 0


def run_remix(args) -> int:
    from pixelsep_plugin import media
    from pixelsep_plugin import recipe as rcp
    from pixelsep_plugin.api import Separator

    suffix = args.out.suffix.lower()
    if suffix not in VIDEO_SUFFIXES and suffix not in AUDIO_SUFFIXES:
        raise InputError(
            f"-o must be a video ({', '.join(VIDEO_SUFFIXES)}) or an audio file ({', '.join(AUDIO_SUFFIXES)}), not {args.out.name}"
        )
    _check_writable_file(args.out, (*VIDEO_SUFFIXES, *AUDIO_SUFFIXES), "-o", protect=args.clip)
    if args.recipe is not None and args.recipe.suffix.lower() != ".json":
        raise InputError(f"--recipe must be a .json file, not {args.recipe.name}")
    check_folder(args.out.parent, "output folder")
    check_outputs([args.out] + ([args.recipe] if args.recipe is not None else []), args.force)
    gains = [_gain(g) for g in args.gain]
    info = media.probe(args.clip)
    media.require_audio(info)
    media.require_video(info)
    sources = build_sources(getattr(args, "specs", None) or [])
    check_sources(sources, info)
    for source in sources:
        rcp.check_name(source.name)
    separator = Separator(args.model, threads=args.threads, cache_root=args.cache_dir, use_cache=not args.no_cache)
    analysis = _analyse(separator, args.clip, args.quiet)
    clip = rcp.clip_ref(args.clip, sha256=analysis.meta["clip"]["sha256"])
    recipe = rcp.new_recipe(clip, separator.package.model_id, separator.package.checksum, sources)
    recipe = rcp.apply_gains(_apply_preset(recipe, args.preset), gains)
    if args.peaks:
        recipe.output.peaks = args.peaks
    if args.tail:
        recipe.output.tail = args.tail
    from pixelsep_plugin.api import render_remix_file

    if suffix in AUDIO_SUFFIXES:
        note_sound_offset(args.clip.name, info.audio_offset_seconds)
    bar = ProgressBar("writing", enabled=not args.quiet)
    try:
        written, warnings = render_remix_file(separator, analysis, recipe, args.out, progress=bar.update)
    finally:
        bar.close()
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"remix: {written}")
    if args.recipe is not None:
        recipe.output.folder = "."
        print(f"recipe: {rcp.save(recipe, args.recipe)}")
    return 0


def run_timeline(args) -> int:
    from host_bridge.timeline import TIMELINE_FORMATS, export_timeline
    from pixelsep_plugin import recipe as rcp

    if args.out.suffix.lower() not in TIMELINE_FORMATS:
        raise InputError(f"timeline must end in {', '.join(TIMELINE_FORMATS)}, not {args.out.name}")
    recipe, separator = _open_recipe(args)
    out_dir = rcp.output_folder(recipe, args.recipe)
    from pixelsep_plugin.recipe.render import planned_outputs

    check_folder(out_dir, "output folder")
    check_folder(args.out.parent, "timeline folder")
    check_outputs([args.out], args.force)
    note_replaced(list(planned_outputs(recipe, out_dir, True, False, args.format).values()))
    analysis = _analyse(separator, recipe.clip.path, args.quiet)
    bar = ProgressBar("writing", enabled=not args.quiet)
    try:
        written = export_timeline(separator, analysis, recipe, args.out, stems_dir=out_dir, audio_format=args.format,
                                  progress=bar.update)  # fmt: skip
    finally:
        bar.close()
    print(f"timeline: {written} (stems in {out_dir})")
    return 0
