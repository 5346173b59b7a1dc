"""Runs inside a real Blender: renders a movie strip with a marker under several placements and
reports where the marker landed in the rendered frame, for comparison with host_bridge.blender.coords.

    python placement.py -- MARKER_CLIP CASES.json OUT.json WORK_DIR
"""

import json
import sys
from pathlib import Path

import bpy
import numpy as np

clip, cases_path, out_path, work = sys.argv[sys.argv.index("--") + 1 :]
cases = json.loads(Path(cases_path).read_text())
results = []
for index, case in enumerate(cases):
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 400, 300, 100
    editor = scene.sequence_editor_create()
    collection = editor.strips if hasattr(editor, "strips") else editor.sequences
    strip = collection.new_movie("marker", clip, channel=1, frame_start=1, fit_method="ORIGINAL")
    strip.transform.offset_x, strip.transform.offset_y = case["offset"]
    strip.transform.scale_x, strip.transform.scale_y = case["scale"]
    strip.transform.rotation = case["rotation"]
    strip.transform.origin = case["origin"]
    strip.use_flip_x, strip.use_flip_y = case["flip"]
    scene.frame_set(5)
    scene.render.filepath = str(Path(work) / f"render{index}.png")
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(scene.render.filepath)
    pixels = np.array(image.pixels[:], dtype=np.float32).reshape(image.size[1], image.size[0], 4)[::-1]
    ys, xs = np.nonzero(pixels[..., 0] > 0.5)
    results.append({"x": float(xs.mean()) + 0.5, "y": float(ys.mean()) + 0.5, "pixels": int(xs.size),
                    "size": [image.size[0], image.size[1]]})  # fmt: skip
Path(out_path).write_text(json.dumps({"blender": bpy.app.version_string, "results": results}))
