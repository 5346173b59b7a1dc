"""``pixelsep batch``: render many recipes on a local process pool or on a Ray cluster.

Each recipe is rendered as ``pixelsep render`` does (stems, residual, remix; ``--video``: the clip
with the remix as its sound) into ``OUT/<recipe name>/`` with ``-o OUT``, else into the recipe's own
output folder. A job that finished writes ``.<name>.done.json`` last; running the same batch again
skips it, so an interrupted batch resumes where it stopped. See :mod:`pixelsep_plugin.batch`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from pixelsep_plugin.errors import InputError

DESCRIPTION = (
    "Renders each recipe (a .json file, or every *.json recipe under a folder) as `pixelsep render` does: stems, "
    "residual and remix, into OUT/<recipe name>/ with -o OUT, else into the recipe's own output folder. Jobs run on a "
    "local pool of --workers processes, each keeping its model loaded and using cores/workers threads. A finished job "
    "writes .<name>.done.json last: running the batch again skips finished jobs and renders the rest. A job that "
    "fails (a missing clip, a bad recipe) is reported in one line and the others go on; the exit status is 1 if any "
    "failed. --ray ADDRESS runs the same jobs on a Ray cluster (`ray start --head` on one machine, `ray start "
    "--address HEAD:6379` on the others): every machine reads the recipes and clips and writes the outputs at the "
    "same paths, so they must be on a filesystem all of them share."
)


def add_parser(commands) -> None:
    batch = commands.add_parser(
        "batch", help="render many recipes, locally on a process pool or on a Ray cluster", description=DESCRIPTION
    )
    batch.add_argument("inputs", type=Path, nargs="+", metavar="RECIPES_OR_FOLDER", help="recipe files or folders")
    batch.add_argument("-o", "--out", type=Path, help="output root: each job writes into OUT/<recipe name>/")
    batch.add_argument("--workers", type=int, help="processes (or Ray actors) rendering at once (default: cores / 2)")
    batch.add_argument("--threads", type=int, help="CPU threads per worker (default: cores / workers; on Ray 1)")
    batch.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on the Ray cluster at ADDRESS (HOST:PORT, or auto); files must be on a shared filesystem",
    )
    batch.add_argument("--format", choices=("wav", "flac"), help="audio format (default: each recipe's)")
    batch.add_argument("--video", action="store_true", help="also the clip with the remix as its sound")
    batch.add_argument("--model", help="model folder or id for every recipe (default: each recipe's model)")
    batch.add_argument("--cache-dir", type=Path, help="where analyses are kept (default: ~/.cache/pixelsep)")
    batch.add_argument("--no-cache", action="store_true", help="analyse again and keep nothing")
    batch.add_argument("--accept-changed-clip", action="store_true", help="render on clips whose sha256 differs")
    batch.add_argument("--accept-other-model", action="store_true", help="render with a model other than a recipe's")
    batch.add_argument("--quiet", "-q", action="store_true", help="only failures and the summary")


class BatchProgress:
    """One line per finished job (done/total, clips per minute, failures) on ``stream``; on a terminal
    the line of a finished or skipped job is redrawn in place, failures always stay on their own line."""

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False):
        self.total, self.quiet = total, quiet
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.started = time.perf_counter()
        self.finished = self.rendered = self.failed = 0
        self.open_line = False

    def report(self, name: str, status: str, message: str = "", seconds: float = 0.0) -> None:
        self.finished += 1
        self.rendered += status == "done"
        self.failed += status == "failed"
        minutes = max(time.perf_counter() - self.started, 1e-9) / 60
        head = f"[{self.finished}/{self.total}]"
        tail = f"{self.rendered / minutes:.1f} clips/min, {self.failed} failed"
        if status == "failed":
            self._write(f"{head} failed {name}: {message}", keep=True)
        elif not self.quiet:
            note = f" in {seconds:.1f} s" if status == "done" else " (already done)"
            self._write(f"{head} {status} {name}{note} | {tail}", keep=not self.interactive)
            if status == "done" and message:
                self._write(f"warning: {name}: {message}", keep=True)

    def _write(self, line: str, keep: bool) -> None:
        if self.open_line:
            self.stream.write("\r\033[K")
        self.stream.write(line + ("\n" if keep else ""))
        self.stream.flush()
        self.open_line = not keep

    def close(self) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.stream.flush()
            self.open_line = False


def run(args: argparse.Namespace) -> int:
    from pixelsep_plugin import batch

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, not {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, not {args.threads}")
    started = time.perf_counter()
    settings = batch.BatchSettings(
        audio_format=args.format, video=args.video, model=args.model,
        cache_root=args.cache_dir.resolve() if args.cache_dir is not None else None, use_cache=not args.no_cache,
        accept_other_model=args.accept_other_model, accept_changed_clip=args.accept_changed_clip,
    )  # fmt: skip
    out_root = args.out.resolve() if args.out is not None else None
    recipes = batch.find_recipes(args.inputs, exclude=out_root)
    plan = batch.plan_jobs(recipes, settings, out_root)
    progress = BatchProgress(plan.total, quiet=args.quiet)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    try:
        for result in plan.known:
            counts[result.status] += 1
            progress.report(result.name, result.status, result.message)
        if args.ray is not None:
            results = batch.run_ray(plan.pending, settings, args.ray, workers=args.workers, threads=args.threads)
        else:
            import os

            workers = args.workers or max(1, (os.cpu_count() or 2) // 2)
            results = batch.run_pool(plan.pending, settings, workers, threads=args.threads)
        for result in results:
            counts[result.status] += 1
            progress.report(result.name, result.status, result.message, result.seconds)
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    where = f"Ray at {args.ray}" if args.ray is not None else "local pool"
    print(
        f"batch ({where}): {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
        f"of {plan.total} in {seconds:.1f} s"
    )
    return 1 if counts["failed"] else 0
