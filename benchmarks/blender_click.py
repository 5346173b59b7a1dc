"""How long a click takes inside Blender: the add-on installed from its zip in a real Blender (the
`bpy` module, numpy's FFT as in Blender's own Python), on the speed benchmark's 60-second 1080p
clip with 48 kHz stereo sound. Writes JSON.

    .venv/bin/python benchmarks/blender_click.py --out benchmarks/results/blender_click.json

Each click adds one more performer and writes every stem again (all sources together) plus the
residual, as the Pick tool does; the analysis before the first click is timed too. Best of
``--repeat`` separate scenes for each click count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def inside_blender(zip_path: str, clip: str, clicks: int, repeat: int, out: str) -> None:
    import bpy

    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    import numpy as np

    from pixelsep_plugin.audio import stft

    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    movie = strips.new_movie("clip", clip, channel=1, frame_start=1)
    scene.render.resolution_x, scene.render.resolution_y = movie.elements[0].orig_width, movie.elements[0].orig_height
    scene.render.fps, scene.render.fps_base = round(movie.fps), 1.0
    editor.active_strip = movie
    begin = time.perf_counter()
    bpy.ops.pixelsep.analyze()
    report = {"blender": bpy.app.version_string, "numpy": np.__version__, "fft": stft._fft.__name__,
              "analysis_seconds": time.perf_counter() - begin, "clicks": []}  # fmt: skip
    scene.frame_set(int(30 * scene.render.fps))
    width = movie.elements[0].orig_width
    timings = [[] for _ in range(clicks)]
    for _ in range(repeat):
        for index in range(clicks):
            x = (index + 0.5) / clicks * width - width / 2  # view coordinates across the picture
            begin = time.perf_counter()
            result = bpy.ops.pixelsep.add_source(view_x=x, view_y=0.0)
            timings[index].append(time.perf_counter() - begin)
            assert result == {"FINISHED"}, result
        bpy.ops.pixelsep.remove()
    for index, seconds in enumerate(timings):
        report["clicks"].append({"sources": index + 1, "stems_written": index + 2, "seconds": min(seconds)})
    Path(out).write_text(json.dumps(report, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blender-python", type=Path, default=REPO / ".venv-blender" / "bin" / "python")
    parser.add_argument("--clip", type=Path, default=HERE / ".clips" / "hd-60s-flat-gop250.mp4")
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "blender_click.json")
    args = parser.parse_args(argv)
    if not args.clip.is_file():
        sys.path.insert(0, str(HERE))
        from speed import make_clip

        make_clip(args.clip, 60.0, None, grain=0.0)
    with tempfile.TemporaryDirectory(prefix="pixelsep-blender-click-") as work:
        work = Path(work)
        build = [sys.executable, str(REPO / "installers" / "build_blender_extension.py"), "--out", str(work / "dist")]
        subprocess.run(build, check=True, capture_output=True)
        archive = next((work / "dist").glob("pixelsep_vse-*-linux-x64.zip"))
        (work / "home").mkdir()
        env = {**os.environ, "HOME": str(work / "home"), "PIXELSEP_CACHE": str(work / "cache")}
        inner = work / "report.json"
        run = subprocess.run(
            [str(args.blender_python), __file__, "--inside", str(archive), str(args.clip), str(args.clicks),
             str(args.repeat), str(inner)],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if run.returncode != 0 or not inner.is_file():
            print((run.stdout + run.stderr)[-3000:], file=sys.stderr)
            return 1
        report = json.loads(inner.read_text())
    report["clip"] = args.clip.name
    report["machine"] = {"cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        inside_blender(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        raise SystemExit(main())
