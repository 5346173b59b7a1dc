"""`pixelsep separate` reads its cache through bounded reads: peak memory does not grow with the clip."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from pixelsep_plugin.runtime.store import ArrayWriter, read_rows

PEAK_RSS = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "print(json.dumps({'code': code, 'kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)


def peak_rss_mib(args: list[str]) -> float:
    command = [sys.executable, "-m", "host_bridge.cli.main", *args]
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], check=True, capture_output=True, text=True)
    report = json.loads(result.stdout)
    assert report["code"] == 0
    return report["kib"] / 1024


def test_separate_peak_memory_is_flat_in_the_clips_length(small_model, clip_factory, tmp_path):
    clicks = ["--at", "40,60", "--at", "100,60", "--at", "140,100"]
    peaks = {}
    for seconds in (24.0, 120.0):  # both longer than the blocks in flight (about 6 s each)
        clip = clip_factory(f"memory-{seconds:g}.mp4", seconds=seconds, fps=10)
        common = ["--model", str(small_model), "--cache-dir", str(tmp_path / "c"), "-q"]
        subprocess.run(
            [sys.executable, "-m", "host_bridge.cli.main", "analyze", str(clip), *common],
            check=True,
            capture_output=True,
        )
        peaks[seconds] = peak_rss_mib(["separate", str(clip), *clicks, "-o", str(tmp_path / "o"), *common])
    # the cache holds about 0.8 MiB per second of clip: mapped pages left resident would add about 80 MiB
    # for the 96 s more (the allocator and the writers account for some 20 MiB of noise)
    assert peaks[120.0] - peaks[24.0] < 50, peaks


def test_read_rows_equals_the_written_rows(tmp_path):
    values = np.random.default_rng(0).standard_normal((37, 3, 5)).astype(np.float32)
    writer = ArrayWriter(tmp_path, "x.f32", "float32", (3, 5))
    writer.append(values[:20])
    writer.append(values[20:])
    description = writer.close()
    for start, stop in [(0, 37), (0, 1), (36, 37), (5, 29), (7, 7)]:
        np.testing.assert_array_equal(read_rows(tmp_path, description, start, stop), values[start:stop])


def test_a_cached_clip_is_not_read_again_and_a_changed_clip_is_never_stale(
    small_model, clip_factory, tmp_path, monkeypatch
):
    import os
    import shutil

    from pixelsep_plugin.api import Separator
    from pixelsep_plugin.runtime import analysis as analysis_module
    from pixelsep_plugin.runtime import store
    from pixelsep_plugin.runtime.store import sha256_of_file

    clip = tmp_path / "clip.mp4"
    shutil.copyfile(clip_factory("fingerprint-a.mp4", seconds=2.0), clip)
    separator = Separator(small_model, threads=2, cache_root=tmp_path / "cache")
    first, cached = separator.analyze(clip)
    assert not cached and first.meta["clip"]["sha256"] == sha256_of_file(clip)

    hashed: list[str] = []
    real_digest, real_sha = analysis_module.clip_digest, store.sha256_of_file

    def counting_digest(path):
        hashed.append(f"clip {path.name}")
        return real_digest(path)

    def counting_sha(path, *args):
        hashed.append(f"entry {path.name}")
        return real_sha(path, *args)

    monkeypatch.setattr(analysis_module, "clip_digest", counting_digest)
    monkeypatch.setattr(store, "sha256_of_file", counting_sha)
    again, cached = separator.analyze(clip)
    assert cached and again.folder == first.folder and hashed == []  # neither the clip nor the entry read
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))  # touched, same bytes
    touched, cached = separator.analyze(clip)
    assert cached and touched.folder == first.folder and hashed == ["clip clip.mp4"]
    hashed.clear()
    assert separator.analyze(clip)[1] and hashed == []
    # an entry file changed behind our back but with its size and mtime kept: found on demand
    path = first.folder / first.meta["arrays"]["components"]["file"]
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert separator.analyze(clip)[1]
    assert (
        analysis_module.analyze(clip, separator.package, separator.nets, separator.cache_root, verify=True)[1] is False
    )  # rebuilt
    # another clip written to the same path: analysed again, keyed on its own full hash
    shutil.copyfile(clip_factory("fingerprint-b.mp4", seconds=2.5), clip)
    hashed.clear()
    changed, cached = separator.analyze(clip)
    assert not cached and changed.folder != first.folder and "clip clip.mp4" in hashed
    assert changed.meta["clip"]["sha256"] == real_sha(clip)
    assert changed.num_columns != first.num_columns
