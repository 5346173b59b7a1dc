"""``pixelsep batch``: a folder of recipes on a process pool and on a local Ray instance, resuming, failures."""

from __future__ import annotations

import io
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from host_bridge.cli.batch import BatchProgress
from host_bridge.cli.main import main
from pixelsep_plugin import batch

CLICKS = {"alpha": "30,60@1", "beta": "120,40@0.5", "gamma": "80,80@1.5"}


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def made_project(small_model, clip_factory, tmp_path_factory):
    """project/clips/<name>.mp4 and project/recipes/<name>.json (one source each), made with `separate`."""
    project = tmp_path_factory.mktemp("batch") / "project"
    cache = project.parent / "cache"
    (project / "clips").mkdir(parents=True)
    for i, (name, click) in enumerate(CLICKS.items()):
        clip = project / "clips" / f"{name}.mp4"
        shutil.copy(clip_factory(f"batch-{name}.mp4", seconds=1.0 + 0.5 * i), clip)
        code = main(
            ["separate", str(clip), "--at", click, "--name", "lead", "-o", str(project / "made"),
             "--recipe", f"{name}.json", "--model", str(small_model), "--cache-dir", str(cache), "-q"]
        )  # fmt: skip
        assert code == 0
    (project / "recipes").mkdir()
    for name in CLICKS:
        shutil.copy(project / "made" / f"{name}.json", project / "recipes")  # the same ../clips/ path
    shutil.rmtree(project / "made")
    return project, cache


@pytest.fixture
def project(made_project, tmp_path):
    source, cache = made_project
    copy = tmp_path / "project"
    shutil.copytree(source, copy)
    return copy, cache


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_pool_renders_all_then_skips_then_reruns_only_what_is_missing(project, small_model, capsys):
    folder, cache = project
    out = folder / "out"
    common = ("--model", small_model, "--cache-dir", cache)
    code, stdout, err = run(capsys, "batch", folder / "recipes", "-o", out, "--workers", 2, *common)
    assert code == 0, err
    assert "3 done, 0 skipped, 0 failed of 3" in stdout
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith(("[1/3] done", "[2/3] done", "[3/3] done")) for line in lines)
    assert all("clips/min, 0 failed" in line for line in lines)
    for name in CLICKS:
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == [f".{name}.done.json", f"{name}.lead.wav", f"{name}.remix.wav", f"{name}.residual.wav"]
        marker = json.loads((out / name / f".{name}.done.json").read_text())
        recipe_text = (folder / "recipes" / f"{name}.json").read_text()
        assert marker["recipe_sha256"] == batch.sha256_of_text(recipe_text)
        assert set(marker["files"]) == {f"{name}.lead.wav", f"{name}.remix.wav", f"{name}.residual.wav"}

    # the same stems and remix as `pixelsep render`
    code, _, err = run(capsys, "render", folder / "recipes" / "beta.json", "-o", folder / "single", "-q", *common)
    assert code == 0, err
    for path in (folder / "single").iterdir():
        assert path.read_bytes() == (out / "beta" / path.name).read_bytes()

    before = outputs(out)
    code, stdout, err = run(capsys, "batch", folder / "recipes", "-o", out, "--workers", 2, *common)
    assert code == 0 and "0 done, 3 skipped, 0 failed" in stdout
    assert err.count("(already done)") == 3
    assert outputs(out) == before

    (out / "alpha" / ".alpha.done.json").unlink()  # as if stopped before its marker was written
    (out / "gamma" / "gamma.remix.wav").unlink()  # a marker whose files are not all there is not done
    code, stdout, err = run(capsys, "batch", folder / "recipes", "-o", out, "--workers", 2, *common)
    assert code == 0 and "2 done, 1 skipped, 0 failed" in stdout
    assert "skipped beta" in err and "done alpha" in err and "done gamma" in err
    assert outputs(out) == before

    code, stdout, err = run(capsys, "batch", folder / "recipes", "-o", out, "--format", "flac", *common)
    assert code == 0 and "3 done, 0 skipped" in stdout  # other settings, other outputs
    assert (out / "alpha" / "alpha.remix.flac").is_file()


def test_a_broken_recipe_fails_alone(project, small_model, capsys):
    folder, cache = project
    recipes = folder / "recipes"
    (recipes / "broken.json").write_text("{not json")
    (recipes / "notes.json").write_text('{"format": "something else"}')  # not a recipe: left out of a folder
    (folder / "clips" / "gamma.mp4").unlink()
    code, stdout, err = run(capsys, "batch", recipes, "--workers", 2, "--model", small_model, "--cache-dir", cache)
    assert code == 1
    assert "2 done, 0 skipped, 2 failed of 4" in stdout
    failures = [line for line in err.splitlines() if " failed " in line.split("|")[0]]
    assert len(failures) == 2
    assert any(line.endswith("failed broken: broken.json: recipe: not valid JSON (Expecting property name "
                             "enclosed in double quotes: line 1 column 2 (char 1))") for line in failures)  # fmt: skip
    assert any("failed gamma: the recipe's clip" in line and "is missing" in line for line in failures)
    # without -o each recipe renders into its own output folder (here the recipes' folder)
    assert (recipes / ".alpha.done.json").is_file() and (recipes / "alpha.remix.wav").is_file()
    assert not (recipes / "gamma.remix.wav").exists() and not (recipes / ".gamma.done.json").exists()
    code, stdout, err = run(capsys, "batch", recipes / "notes.json", "--model", small_model)  # named: refused
    assert code == 1 and "failed notes: notes.json: recipe: not a pixelsep recipe" in err


def test_arguments_are_checked_before_any_work(tmp_path, capsys):
    code, _, err = run(capsys, "batch", tmp_path / "nowhere")
    assert code == 1 and err.strip().endswith("nowhere: no such recipe file or folder")
    code, _, err = run(capsys, "batch", tmp_path)
    assert code == 1 and "no recipes (*.json) found" in err and err.count("\n") == 1
    code, _, err = run(capsys, "batch", tmp_path, "--workers", 0)
    assert code == 1 and "--workers must be at least 1" in err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_redraws_one_line_and_keeps_failures():
    stream = Terminal()
    progress = BatchProgress(3, stream=stream)
    progress.report("a", "done", seconds=1.0)
    progress.report("b", "failed", "b.json: recipe: not valid JSON")
    progress.report("c", "skipped")
    progress.close()
    text = stream.getvalue()
    assert (
        text.startswith("[1/3] done a in 1.0 s | ")
        and "\r\033[K[2/3] failed b: b.json: recipe: not valid JSON\n" in text
    )
    assert "JSON\n[3/3] skipped c (already done) | " in text and text.endswith(" clips/min, 1 failed\n")
    assert text.count("\n") == 2


def test_job_names_are_unique():
    paths = [Path("/a/x/take.json"), Path("/a/y/take.json"), Path("/a/y/solo.json")]
    assert batch._job_names(paths) == {paths[0]: "x-take", paths[1]: "y-take", paths[2]: "solo"}


RAY_HEAD = """
import sys, ray
ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


@pytest.fixture
def ray_address(monkeypatch):
    """The address of a local Ray instance (2 CPUs) that lives as long as the test; the head and this
    process share a token made for the test (Ray's token authentication stays on)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # before Ray is imported: it reads them then
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    pytest.importorskip("ray", reason='Ray is not installed (pip install "pixelsep[cluster]")')
    head = subprocess.Popen(
        [sys.executable, "-c", RAY_HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )  # fmt: skip
    try:
        address = head.stdout.readline().strip()
        assert address, "the local Ray instance did not start"
        yield address
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


def test_ray_renders_what_the_pool_renders(project, small_model, ray_address, capsys):
    folder, cache = project
    common = ("--model", small_model, "--cache-dir", cache)
    code, stdout, err = run(capsys, "batch", folder / "recipes", "-o", folder / "pool", "--workers", 2, *common)
    assert code == 0, err
    code, stdout, err = run(capsys, "batch", folder / "recipes", "-o", folder / "ray", "--ray", ray_address, *common)
    assert code == 0, err
    assert f"batch (Ray at {ray_address}): 3 done, 0 skipped, 0 failed of 3" in stdout
    pool, ray = outputs(folder / "pool"), outputs(folder / "ray")
    assert sorted(pool) == sorted(ray)
    for name, data in pool.items():
        if name.endswith(".done.json"):
            assert json.loads(data)["files"] == json.loads(ray[name])["files"]
        else:
            assert data == ray[name], name
    code, stdout, err = run(capsys, "batch", folder / "recipes", "-o", folder / "ray", "--ray", ray_address, *common)
    assert code == 0 and "0 done, 3 skipped" in stdout
