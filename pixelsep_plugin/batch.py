"""Rendering many recipes: on a local process pool or on a Ray cluster, resumable after an interruption.

A job is one recipe file rendered as ``pixelsep render`` does: its stems, residual and remix (and,
on request, the clip with the remix as its sound) into one folder. :func:`find_recipes` lists the
recipe files named or found in folders, :func:`plan_jobs` reads each recipe, picks its output folder
and model, and marks as skipped a job whose outputs are complete; :func:`run_job` renders one job in
a worker that keeps its loaded models; :func:`run_pool` and :func:`run_ray` run the pending jobs and
yield one :class:`JobResult` per job as it finishes.

Resuming: a finished job writes ``.<name>.done.json`` into its output folder last, atomically, with
the sha256 of the recipe file, the model's checksum, the render settings and the size of every file
it wrote. A job is skipped only when that marker matches and every file it lists is there with its
size, so outputs cut short by an interruption are rendered again, never taken for done.

Failures stay with their job: a missing clip or a bad recipe gives that job a one-line reason and
the others go on. On Ray, every machine reads the recipes and clips and writes the outputs at the
same paths: the folders must be on a filesystem that all of them share.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelsep_plugin.errors import InputError, PixelsepError

if TYPE_CHECKING:
    from pixelsep_plugin.api import Separator

MARKER_FORMAT = "pixelsep-batch-done"
MARKER_VERSION = 1
BATCH_AUDIO_FORMATS = ("wav", "flac")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class BatchSettings:
    """What every job of a batch shares.

    audio_format: "wav", "flac" or None (each recipe's own, which may also be a lossy format).
    video: also write ``<prefix>.remix<suffix>``, the clip with the remix as its sound.
    model: a model folder or id for every job; None: each recipe's own model id.
    cache_root: where analyses are kept (None: the default cache); use_cache False keeps nothing.
    """

    audio_format: str | None = None
    video: bool = False
    model: str | None = None
    cache_root: Path | None = None
    use_cache: bool = True
    accept_other_model: bool = False
    accept_changed_clip: bool = False

    def marker_settings(self) -> dict[str, Any]:
        """The settings that change what a job writes (they are part of its marker)."""
        return {"audio_format": self.audio_format, "video": self.video}


@dataclass(frozen=True)
class Job:
    """One recipe to render. ``recipe_text`` is the file's text as read when planning (its sha256 is
    ``recipe_sha256``); ``model`` the model folder or id that renders it, ``model_sha256`` its checksum."""

    name: str
    recipe_path: Path
    recipe_text: str
    recipe_sha256: str
    out_dir: Path
    model: str
    model_sha256: str

    @property
    def marker_path(self) -> Path:
        return marker_path(self.out_dir, self.name)


@dataclass
class JobResult:
    """How one job ended: status "done", "skipped" or "failed"; message: the one-line reason of a
    failure (or a warning of a render); files: what it wrote; seconds: its wall-clock time."""

    name: str
    status: str
    message: str = ""
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Plan:
    """The jobs to run and the results already known (skipped jobs, recipes that cannot be read)."""

    pending: list[Job]
    known: list[JobResult]

    @property
    def total(self) -> int:
        return len(self.pending) + len(self.known)


def marker_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f".{name}.done.json"


def sha256_of_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Finding and planning


def _other_json(path: Path) -> bool:
    """Whether ``path`` is JSON that is plainly not a recipe (valid JSON without the recipe's format, or
    larger than a recipe may be). Unreadable or broken files are not: they fail as recipes, with their reason."""
    from pixelsep_plugin.recipe.document import FORMAT, MAX_RECIPE_BYTES

    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            return True
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return not (isinstance(data, dict) and data.get("format") == FORMAT)


def find_recipes(inputs: Sequence[Path], exclude: Path | None = None) -> list[Path]:
    """Recipe files: each input that is a file, and the ``*.json`` recipes under each input folder
    (searched recursively; hidden files and folders, anything under ``exclude`` and JSON files of other
    kinds left out). Raises InputError for an input that does not exist, or when nothing is found."""
    found: list[Path] = []
    excluded = Path(exclude).resolve() if exclude is not None else None
    for given in inputs:
        path = Path(given)
        if path.is_file():
            found.append(path.resolve())
        elif path.is_dir():
            for candidate in sorted(path.rglob("*.json")):
                relative = candidate.relative_to(path).parts
                resolved = candidate.resolve()
                if any(part.startswith(".") for part in relative):
                    continue
                if excluded is not None and resolved.is_relative_to(excluded):
                    continue
                if _other_json(candidate):
                    continue
                found.append(resolved)
        else:
            raise InputError(f"{path}: no such recipe file or folder")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InputError(f"no recipes (*.json) found in {', '.join(str(p) for p in inputs)}")
    return unique


def _job_names(paths: Sequence[Path]) -> dict[Path, str]:
    """A name per recipe: its file name without .json, made unique with its parent folders' names."""
    names: dict[Path, str] = {}
    depth = 1
    pending = list(paths)
    while pending:
        candidates = {p: "-".join(p.with_suffix("").parts[-depth:]) for p in pending}
        counts: dict[str, int] = {}
        for name in candidates.values():
            counts[name] = counts.get(name, 0) + 1
        still = []
        for path, name in candidates.items():
            if counts[name] == 1 or depth >= len(path.parts):
                names[path] = name
            else:
                still.append(path)
        pending, depth = still, depth + 1
    return names


def read_marker(path: Path) -> dict[str, Any] | None:
    """A marker's content, or None when it is missing or unreadable (then the job is not done)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MARKER_FORMAT else None


def is_done(job: Job, settings: BatchSettings) -> bool:
    """Whether ``job``'s marker matches its recipe, model and settings and every file it lists is complete."""
    marker = read_marker(job.marker_path)
    if marker is None:
        return False
    if (
        marker.get("version") != MARKER_VERSION
        or marker.get("recipe_sha256") != job.recipe_sha256
        or marker.get("model_sha256") != job.model_sha256
        or marker.get("settings") != settings.marker_settings()
    ):
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for name, size in files.items():
        path = job.out_dir / str(name)
        if Path(str(name)).name != str(name) or not path.is_file() or path.stat().st_size != size:
            return False
    return True


def _model_checksum(model: str, checksums: dict[str, str]) -> str:
    if model not in checksums:
        from pixelsep_plugin.modelstore import load_package
        from pixelsep_plugin.modelstore.registry import resolve_model

        checksums[model] = load_package(resolve_model(model)).checksum
    return checksums[model]


def plan_jobs(recipes: Sequence[Path], settings: BatchSettings, out_root: Path | None = None) -> Plan:
    """Read each recipe and decide where its outputs go and whether it is already done.

    With ``out_root`` a job writes into ``out_root/<name>/`` (``name``: the recipe's file name
    without .json, with its folders' names when two recipes share one); without it, into the
    recipe's own output folder. A recipe that cannot be read, whose model cannot be loaded or is not
    the recipe's (unless ``settings.accept_other_model``), or whose output files would collide with
    another job's, is a failed result; the others are planned."""
    from pixelsep_plugin import recipe as rcp

    if settings.audio_format is not None and settings.audio_format not in BATCH_AUDIO_FORMATS:
        raise InputError(f"batch audio format must be one of {', '.join(BATCH_AUDIO_FORMATS)}")
    names = _job_names(recipes)
    checksums: dict[str, str] = {}
    pending: list[Job] = []
    known: list[JobResult] = []
    destinations: dict[tuple[Path, str], str] = {}
    for path in recipes:
        name = names[path]
        try:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"cannot read recipe {path.name}: {error}") from None
            try:
                recipe = rcp.loads(text, path.parent)
            except InputError as error:
                raise InputError(f"{path.name}: {error}") from None
            out_dir = out_root / name if out_root is not None else rcp.output_folder(recipe, path)
            model = settings.model or recipe.model.id
            checksum = _model_checksum(model, checksums)
            rcp.check_model(recipe, model, checksum, settings.accept_other_model)
            destination = (out_dir.resolve(), recipe.prefix.lower())
            if destination in destinations:
                raise InputError(
                    f"writes the same files as {destinations[destination]} ({out_dir}/{recipe.prefix}.*): "
                    "give -o OUT to render each recipe into its own folder"
                )
            destinations[destination] = name
        except PixelsepError as error:
            known.append(JobResult(name, "failed", str(error)))
            continue
        job = Job(name, path, text, sha256_of_text(text), out_dir.resolve(), model, checksum)
        if is_done(job, settings):
            known.append(JobResult(name, "skipped", out_dir=job.out_dir))
        else:
            pending.append(job)
    return Plan(pending, known)


# ---------------------------------------------------------------------------------------------------
# One job


class Worker:
    """Renders jobs; keeps each model it loads (one ONNX Runtime session set per model, ``threads`` threads)."""

    def __init__(self, settings: BatchSettings, threads: int | None = None):
        self.settings = settings
        self.threads = threads
        self.separators: dict[str, Separator] = {}

    def separator(self, model: str) -> Separator:
        if model not in self.separators:
            from pixelsep_plugin.api import Separator

            self.separators[model] = Separator(
                model, threads=self.threads, cache_root=self.settings.cache_root, use_cache=self.settings.use_cache
            )
        return self.separators[model]

    def run(self, job: Job) -> JobResult:
        """Render ``job``; every error becomes a failed result with a one-line reason."""
        started = time.perf_counter()
        try:
            files, warnings = self._render(job)
        except PixelsepError as error:
            return JobResult(job.name, "failed", str(error), job.out_dir, seconds=time.perf_counter() - started)
        except Exception as error:  # a job's failure must not end the batch; its reason is reported
            reason = str(error).splitlines()[0] if str(error) else ""
            message = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
            return JobResult(job.name, "failed", message, job.out_dir, seconds=time.perf_counter() - started)
        return JobResult(job.name, "done", "; ".join(warnings), job.out_dir, files, time.perf_counter() - started)

    def _render(self, job: Job) -> tuple[list[Path], list[str]]:
        from pixelsep_plugin import recipe as rcp
        from pixelsep_plugin.api import render_recipe, write_remix_video

        settings = self.settings
        try:
            recipe = rcp.loads(job.recipe_text, job.recipe_path.parent)
        except InputError as error:
            raise InputError(f"{job.recipe_path.name}: {error}") from None
        recipe.folder = job.recipe_path.parent
        rcp.check_clip(recipe, accept_changed=True)  # a missing clip fails before its model loads
        separator = self.separator(job.model)
        recipe = rcp.check_clip(recipe, accept_changed=settings.accept_changed_clip, digest=separator.clip_sha256)
        rcp.check_model(recipe, separator.package.model_id, separator.package.checksum, settings.accept_other_model)
        analysis, _ = separator.analyze(recipe.clip.path)
        job.marker_path.unlink(missing_ok=True)
        result = render_recipe(separator, analysis, recipe, job.out_dir, audio_format=settings.audio_format)
        files = [*result.stems.values(), *result.processed.values()]
        files += [path for path in (result.residual, result.remix) if path is not None]
        if settings.video:
            suffix = recipe.clip.path.suffix.lower()
            video = job.out_dir / f"{recipe.prefix}.remix{suffix if suffix in VIDEO_SUFFIXES else '.mp4'}"
            files.append(write_remix_video(separator, analysis, recipe, video))
        write_marker(job, settings, files, protect=(recipe.clip.path,))
        return files, result.warnings


def write_marker(job: Job, settings: BatchSettings, files: Iterable[Path], protect: Sequence[Path] = ()) -> Path:
    """Write ``job``'s done marker atomically: the recipe's sha256, the model checksum, the settings
    and the size of each file (names relative to the job's folder)."""
    from pixelsep_plugin.media.encode import atomic_destination

    sizes = {}
    for path in files:
        path = Path(path)
        if path.parent.resolve() != job.out_dir:
            raise InputError(f"{path} is outside the job's folder {job.out_dir}")
        sizes[path.name] = path.stat().st_size
    data = {
        "format": MARKER_FORMAT,
        "version": MARKER_VERSION,
        "recipe": str(job.recipe_path),
        "recipe_sha256": job.recipe_sha256,
        "model": job.model,
        "model_sha256": job.model_sha256,
        "settings": settings.marker_settings(),
        "files": sizes,
    }
    with atomic_destination(job.marker_path, protect=protect) as temp:
        temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return job.marker_path


# ---------------------------------------------------------------------------------------------------
# Local process pool

_worker: Worker | None = None


def _init_pool_worker(settings: BatchSettings, threads: int) -> None:
    global _worker
    _worker = Worker(settings, threads)


def _run_in_pool_worker(job: Job) -> JobResult:
    if _worker is None:
        raise RuntimeError("the pool worker was not initialised")
    return _worker.run(job)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """CPU threads for each worker's nets: the cores shared out evenly, at least one."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def run_pool(
    jobs: Sequence[Job], settings: BatchSettings, workers: int, threads: int | None = None
) -> Iterator[JobResult]:
    """Run ``jobs`` on ``workers`` processes (spawned, each keeping its loaded model) and yield each
    result as its job finishes. ``threads``: CPU threads per worker (default: cores / workers)."""
    if not jobs:
        return
    workers = max(1, min(workers, len(jobs)))
    threads = threads or threads_per_worker(workers)
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_init_pool_worker,
        initargs=(settings, threads),
    )
    try:
        futures: dict[Future[JobResult], Job] = {executor.submit(_run_in_pool_worker, job): job for job in jobs}
        running = set(futures)
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = futures[future]
                try:
                    yield future.result()
                except Exception as error:  # a worker that died: its job failed, the pool reports the rest
                    yield JobResult(job.name, "failed", f"worker stopped: {type(error).__name__}: {error}", job.out_dir)
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


# ---------------------------------------------------------------------------------------------------
# Ray cluster


def run_ray(
    jobs: Sequence[Job],
    settings: BatchSettings,
    address: str,
    workers: int | None = None,
    threads: int | None = None,
) -> Iterator[JobResult]:
    """Run ``jobs`` on the Ray cluster at ``address`` ("auto": the one this machine has joined) with an
    actor pool: ``workers`` actors (default: the cluster's CPUs / ``threads``), each holding its loaded
    model and asking Ray for ``threads`` CPUs (default 1). Recipes, clips and outputs are read and
    written at the same paths on every machine: they must be on a shared filesystem."""
    if not jobs:
        return
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise InputError('--ray needs Ray: pip install "pixelsep[cluster]"') from None
    import logging

    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            f"cannot connect to the Ray cluster at {address} ({reason}): is it running, and is its token in "
            "RAY_AUTH_TOKEN or ~/.ray/auth_token here?"
        ) from None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = max(1, min(threads or 1, cpus))
        count = max(1, min(workers or max(1, cpus // threads), len(jobs)))
        actor_class = ray.remote(num_cpus=threads)(Worker)
        pool = ActorPool([actor_class.remote(settings, threads) for _ in range(count)])
        for job in jobs:
            pool.submit(lambda actor, job: actor.run.remote(job), job)
        reported: set[str] = set()
        lost = ""
        while pool.has_next():
            try:
                result = pool.get_next_unordered()
            except ray.exceptions.RayError as error:  # an actor lost: its job is reported failed below
                lost = str(error).splitlines()[0] if str(error) else type(error).__name__
                continue
            reported.add(result.name)
            yield result
        for job in jobs:
            if job.name not in reported:
                yield JobResult(job.name, "failed", f"Ray worker lost: {lost}", job.out_dir)
    finally:
        ray.shutdown()
