"""Runs inside a real Blender (the bpy module): install the extension zip like a user, separate the
example duet by clicking in preview coordinates, save, reopen, remove. Writes what it saw as JSON.

    python scenario.py -- EXTENSION.zip CLIP OUT.json WORK_DIR
"""

import json
import shutil
import sys
from pathlib import Path

import bpy

zip_path, clip, out_path, work = sys.argv[sys.argv.index("--") + 1 :]
work = Path(work)
report = {"blender": bpy.app.version_string}

bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
report["enabled"] = [name for name in bpy.context.preferences.addons.keys() if name.endswith("pixelsep_vse")]

from host_bridge.blender import coords  # noqa: E402  (from the extension's own wheels)


def strips_of(editor):
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def state(scene):
    out = {}
    for s in strips_of(scene.sequence_editor):
        entry = {"type": s.type, "channel": s.channel, "start": s.frame_final_start, "end": s.frame_final_end,
                 "mute": s.mute}  # fmt: skip
        if s.type == "SOUND":
            entry["stored"] = s.sound.filepath
            entry["file"] = bpy.path.abspath(s.sound.filepath)
            entry["volume"] = s.volume
        out[s.name] = entry
    return out


scene = bpy.context.scene
scene.render.resolution_x, scene.render.resolution_y = 640, 480
scene.render.fps, scene.render.fps_base = 24, 1.0
editor = scene.sequence_editor_create()
movie = strips_of(editor).new_movie("duet", clip, channel=1, frame_start=11)
strips_of(editor).new_sound("duet.sound", clip, channel=2, frame_start=11)
try:  # Blender 5: a length; 4.x: an end frame
    strips_of(editor).new_effect("title", "COLOR", channel=4, frame_start=50, length=10)
except TypeError:
    strips_of(editor).new_effect("title", "COLOR", channel=4, frame_start=50, frame_end=60)
movie.transform.offset_x, movie.transform.offset_y = 30.0, -20.0
movie.transform.scale_x = movie.transform.scale_y = 1.2
movie.transform.rotation = 0.1
editor.active_strip = movie
report["before"] = state(scene)

# the background analysis behind the Analyze button (the button's modal part needs a window)
operators = sys.modules[next(n for n in sys.modules if n.endswith("pixelsep_vse.operators"))]
cancelled = operators.AnalysisJob(clip)  # first, so nothing is cached yet
cancelled.cancelled = True
cancelled.thread.join(120)
report["cancelled_job"] = {"result": cancelled.result is not None, "error": cancelled.error}
job = operators.AnalysisJob(clip)
seen = []
while job.thread.is_alive():
    seen.append(job.fraction)
    job.thread.join(0.05)
report["background_job"] = {"result": job.result is not None, "error": job.error, "fraction": job.fraction,
                            "progress_seen": sorted(set(round(f, 2) for f in seen))}  # fmt: skip
report["analyze"] = list(bpy.ops.pixelsep.analyze())
sidecar = json.loads(Path(clip).with_suffix(".json").read_text())
frame = int(round(5.0 * sidecar["fps"]))
scene.frame_set(int(movie.frame_start) + frame)
element = movie.elements[0]
placement = coords.StripPlacement(element.orig_width, element.orig_height, offset_x=30.0, offset_y=-20.0,
                                  scale_x=1.2, scale_y=1.2, rotation=0.1)  # fmt: skip
report["clicks"] = {}
for index, performer in enumerate(sidecar["performers"]):
    x0, y0, x1, y1 = performer["boxes"][frame]
    view = coords.movie_to_view(placement, (x0 + x1) / 2, (y0 + y1) / 2)
    report["clicks"][performer["name"]] = [(x0 + x1) / 2, (y0 + y1) / 2]
    report.setdefault("add_source", []).append(
        list(bpy.ops.pixelsep.add_source(view_x=view[0], view_y=view[1], source_name=performer["name"]))
    )
    if index == 0:  # the user keyframes the first stem's volume before clicking the next performer
        first = strips_of(editor)["duet." + performer["name"]]
        for key_frame, volume in ((20, 0.25), (200, 0.75)):
            first.volume = volume
            first.keyframe_insert("volume", frame=key_frame)
        keyed = first.name
current = scene.frame_current
report["keyframes"] = []
for key_frame in (20, 200):
    scene.frame_set(key_frame)
    report["keyframes"].append(strips_of(editor)[keyed].volume)
scene.frame_set(current)
report["separated"] = state(scene)
bpy.context.window_manager.pixelsep_heatmap = True  # the overlay's toggle (drawing needs a window)
report["heatmap_toggle"] = bpy.context.window_manager.pixelsep_heatmap
report["recipe"] = json.loads(movie["pixelsep"])
report["host_state"] = json.loads(movie["pixelsep_blender"])

# the edit leaves Blender as the engine's recipe (rendered by the command line in the test), with
# its remix and a timeline made by the same engine calls the command line uses
exported = work / "from-blender"
report["save_recipe"] = list(bpy.ops.pixelsep.save_recipe(filepath=str(exported / "duet.json")))
report["render_remix"] = list(bpy.ops.pixelsep.render_remix(filepath=str(exported / "remix.wav")))
report["export_timeline"] = [list(bpy.ops.pixelsep.export_timeline(filepath=str(exported / f"duet.{suffix}")))
                             for suffix in ("mlt", "xml")]  # fmt: skip

blend = work / "project" / "edit.blend"
blend.parent.mkdir(parents=True)
bpy.ops.wm.save_as_mainfile(filepath=str(blend))
report["saved"] = state(scene)

bpy.ops.wm.open_mainfile(filepath=str(blend))
scene = bpy.context.scene
report["reopened"] = state(scene)
copies = work / "stems-after-reopen"  # for the comparison with the CLI
copies.mkdir()
for name, entry in report["reopened"].items():
    if entry["type"] == "SOUND" and name != "duet.sound":
        shutil.copy(entry["file"], copies / Path(entry["file"]).name)
editor = scene.sequence_editor
editor.active_strip = strips_of(editor)["duet"]
# what Blender plays: the accordion soloed from the panel, mixed down by Blender's own audio engine
report["solo"] = list(bpy.ops.pixelsep.solo(strip_name="duet.accordion"))
report["soloed"] = state(scene)
scene.frame_start, scene.frame_end = 1, strips_of(editor)["duet"].frame_final_end
mixdown = work / "mixdown-solo-accordion.wav"
report["mixdown"] = list(bpy.ops.sound.mixdown(filepath=str(mixdown), container="WAV", codec="PCM", format="F32",
                                               mixrate=44100, channels="STEREO"))  # fmt: skip
report["mixdown_file"] = str(mixdown)
report["fps"] = scene.render.fps / scene.render.fps_base
report["remove"] = list(bpy.ops.pixelsep.remove())
report["removed"] = state(scene)
report["recipe_after_remove"] = "pixelsep" in strips_of(editor)["duet"]

# a scene whose frame rate is not the movie's: the 24 fps duet in a 30 fps scene, its first second
# trimmed off both the picture (24 movie frames) and the movie's sound (30 scene frames)
scene.render.fps, scene.render.fps_base = 30, 1.0
movie30 = strips_of(editor).new_movie("duet30", clip, channel=10, frame_start=301)
sound30 = strips_of(editor).new_sound("duet30.sound", clip, channel=11, frame_start=301)
movie30.frame_final_start, sound30.frame_final_start = 301 + 24, 301 + 30
editor.active_strip = movie30
bpy.ops.pixelsep.analyze()
scene.frame_set(301 + frame)  # the movie's picture `frame`: 5 s into it
performer = sidecar["performers"][0]
x0, y0, x1, y1 = performer["boxes"][frame]
size = movie30.elements[0].orig_width, movie30.elements[0].orig_height
view = coords.movie_to_view(coords.StripPlacement(*size), (x0 + x1) / 2, (y0 + y1) / 2)
# as a click in a window does: the span around the playhead first, the whole stems in the background
# (no timer runs without a window: the script waits for them and swaps them in)
report["fps30_add"] = list(bpy.ops.pixelsep.add_source(view_x=view[0], view_y=view[1], source_name=performer["name"],
                                                       span_first=True))  # fmt: skip
report["fps30_span"] = {"strips": state(scene), "pending": len(operators._stem_jobs)}
report["fps30_finished"] = operators.finish_stem_renders(timeout=300)
report["fps30"] = {"recipe": json.loads(movie30["pixelsep"]), "strips": state(scene)}

# the user renames the stem strips, then clicks the other performer: the renamed strips get the new
# render's sound (no second strip for them), and Remove Separation finds them by their tags
strips_of(editor)["duet30." + performer["name"]].name = "my drum"
strips_of(editor)["duet30.residual"].name = "the rest"
performer = sidecar["performers"][1]
x0, y0, x1, y1 = performer["boxes"][frame]
view = coords.movie_to_view(coords.StripPlacement(*size), (x0 + x1) / 2, (y0 + y1) / 2)
report["renamed_add"] = list(bpy.ops.pixelsep.add_source(view_x=view[0], view_y=view[1], source_name=performer["name"]))
report["renamed"] = {"recipe": json.loads(movie30["pixelsep"]), "host": json.loads(movie30["pixelsep_blender"]),
                     "strips": state(scene)}  # fmt: skip
strips_of(editor)["duet30.sound"].name = "my sound"  # the muted original, renamed too
report["renamed_remove"] = list(bpy.ops.pixelsep.remove())
report["renamed_sound_tags"] = [k for k in strips_of(editor)["my sound"].keys() if k.startswith("pixelsep")]
report["renamed_removed"] = state(scene)
# a recipe made on the command line (by the test, before Blender started) opened on a new movie strip
cli_recipe = work / "cli" / "duet.json"
movie_b = strips_of(editor).new_movie("duetB", clip, channel=20, frame_start=1001)
editor.active_strip = movie_b
bpy.ops.pixelsep.analyze()
report["open_recipe"] = list(bpy.ops.pixelsep.open_recipe(filepath=str(cli_recipe)))
report["opened"] = {"recipe": json.loads(movie_b["pixelsep"]), "strips": state(scene)}
# the chain re-rendered from the panel: the strip keeps its name and place, and plays the new render
strips_of(editor)["duetB.long-drum"].volume = 0.3
report["rerender"] = list(bpy.ops.pixelsep.rerender())
report["rerendered"] = state(scene)
Path(out_path).write_text(json.dumps(report, indent=1))
