"""Runs inside a Blender with a window (an X display, e.g. Xvfb): the parts a user touches that the
windowless ``bpy`` module cannot run. It installs the extension zip like a user, opens the Video
Editing layout, presses Analyze (the modal operator with its background thread and progress bar),
runs the Pick Performers tool and clicks both performers of the example duet with the real mouse
(xdotool), turns the heatmap overlay on and compares screenshots, steps through Undo and Redo with
the keyboard and removes the separation.
Writes ``report.json`` and the screenshots to OUT_DIR; exits 1 if a check failed.

    blender --factory-startup --app-template Video_Editing --window-geometry 0 0 1600 900 \\
        --python windowed.py -- EXTENSION.zip CLIP OUT_DIR

``tests/blender/windowed.sh`` runs it under Xvfb.
"""

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import bpy
import numpy as np

zip_path, clip, out_dir = sys.argv[sys.argv.index("--") + 1 :]
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
report = {"blender": bpy.app.version_string, "python": sys.version.split()[0], "checks": {}}


def check(name, ok, detail=None):
    report["checks"][name] = {"ok": bool(ok), "detail": detail}


def xdotool(*args):
    subprocess.run(["xdotool", *map(str, args)], check=True)


def screenshot(name, wait=True):
    shot = subprocess.Popen(["import", "-window", "root", str(out / name)])
    return shot.wait() if wait else shot


def screen_change(before, after, window):
    """Per-pixel mean absolute RGB change between two screenshots, rows from the window's bottom."""
    planes = []
    for path in (before, after):
        image = bpy.data.images.load(str(path))
        pixels = np.empty(image.size[0] * image.size[1] * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)  # Blender's images start at the bottom row, like its regions
        planes.append(pixels.reshape(image.size[1], image.size[0], 4)[..., :3])
        bpy.data.images.remove(image)
    assert planes[0].shape[:2] == (window.height, window.width)
    return np.abs(planes[1] - planes[0]).mean(axis=-1)


def strips_of(editor):
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def state(scene):
    return {
        s.name: {"type": s.type, "channel": s.channel, "start": s.frame_final_start, "end": s.frame_final_end,
                 "mute": s.mute, "file": s.sound.filepath if s.type == "SOUND" else None}
        for s in strips_of(scene.sequence_editor)
    }  # fmt: skip


def sequencer_areas(screen):
    preview = next(a for a in screen.areas if a.type == "SEQUENCE_EDITOR" and a.spaces.active.view_type == "PREVIEW")
    timeline = next(a for a in screen.areas if a.type == "SEQUENCE_EDITOR" and a.spaces.active.view_type == "SEQUENCER")
    return preview, timeline


def region(area, kind):
    return next(r for r in area.regions if r.type == kind)


def wait_until(condition, seconds):
    """Yields timer delays until ``condition()`` holds or ``seconds`` pass; the UI keeps running meanwhile."""
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        yield 0.1


def steps():
    xdotool("key", "Escape")  # the splash screen
    yield 0.5
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    operators = sys.modules[next(n for n in sys.modules if n.endswith("pixelsep_vse.operators"))]
    overlay = sys.modules[next(n for n in sys.modules if n.endswith("pixelsep_vse.overlay"))]
    from host_bridge.blender import coords  # from the extension's own wheels

    check("installed", operators.MODEL_DIR.is_dir(), str(operators.MODEL_DIR))

    window = bpy.context.window_manager.windows[0]
    screen = window.screen
    scene = window.scene
    sidecar = json.loads(Path(clip).with_suffix(".json").read_text())
    scene.render.resolution_x, scene.render.resolution_y = sidecar["width"], sidecar["height"]
    scene.render.fps, scene.render.fps_base = int(sidecar["fps"]), 1.0
    editor = scene.sequence_editor_create()
    movie = strips_of(editor).new_movie("duet", clip, channel=2, frame_start=1)
    strips_of(editor).new_sound("duet.sound", clip, channel=1, frame_start=1)
    scene.frame_start, scene.frame_end = 1, movie.frame_final_end - 1
    frame = int(round(5.0 * sidecar["fps"]))
    scene.frame_set(1 + frame)
    editor.active_strip = movie
    before = state(scene)

    preview, timeline = sequencer_areas(screen)
    preview.spaces.active.show_region_ui = True
    preview.spaces.active.show_gizmo_navigate = False  # see-through buttons over the picture's corner
    sidebar = region(preview, "UI")
    preview_region = region(preview, "PREVIEW")
    for area, main, operator in ((preview, preview_region, bpy.ops.sequencer.view_all_preview),
                                 (timeline, region(timeline, "WINDOW"), bpy.ops.sequencer.view_all)):  # fmt: skip
        with bpy.context.temp_override(window=window, screen=screen, area=area, region=main):
            operator()
    yield 0.5
    # adding the strips from the Add menu would have made this an undo step of its own
    with bpy.context.temp_override(window=window, screen=screen, area=timeline):
        bpy.ops.ed.undo_push(message="Add Movie Strip")
    # the sidebar's PixelSep tab, as a user gets there: Ctrl+Wheel over the sidebar steps through the tabs
    xdotool("mousemove", sidebar.x + sidebar.width // 2, window.height - (sidebar.y + sidebar.height // 2))
    for _ in range(12):
        if sidebar.active_panel_category == "PixelSep":
            break
        xdotool("keydown", "ctrl", "click", "5", "keyup", "ctrl")
        yield 0.3
    check("panel_tab", sidebar.active_panel_category == "PixelSep", sidebar.active_panel_category)

    # Analyze, as the button runs it: a modal operator over a background thread. Esc cancels it.
    path = operators.clip_path(movie)
    with bpy.context.temp_override(window=window, screen=screen, area=preview, region=sidebar):
        bpy.ops.pixelsep.analyze("INVOKE_DEFAULT")
    yield 0.1
    xdotool("key", "Escape")
    yield from wait_until(lambda: path not in operators._jobs, 60)
    check("analyze_esc_cancels", path not in operators._jobs and path not in operators._analyses)
    ticks = []  # a 20 Hz heartbeat on Blender's main loop: it stalls if the analysis blocks the UI

    def heartbeat():
        ticks.append(time.monotonic())
        return 0.05

    bpy.app.timers.register(heartbeat)
    with bpy.context.temp_override(window=window, screen=screen, area=preview, region=sidebar):
        started = bpy.ops.pixelsep.analyze("INVOKE_DEFAULT")
    shot = False
    begin = time.monotonic()
    while path not in operators._analyses and time.monotonic() - begin < 300:
        job = operators._jobs.get(path)
        if not shot and job is not None and job.fraction > 0.2:
            sidebar.tag_redraw()
            yield 0.25  # the panel redraws with the bar
            report["analyze_screenshot_fraction"] = job.fraction
            shot = screenshot("blender-analyze.png", wait=False)  # Blender stays responsive meanwhile
        yield 0.05
    bpy.app.timers.unregister(heartbeat)
    if shot:
        shot.wait()
    gaps = [b - a for a, b in zip(ticks[:-1], ticks[1:], strict=True)]
    check("analyze_modal", started == {"RUNNING_MODAL"} and path in operators._analyses, sorted(started))
    check("ui_live_during_analysis", len(ticks) >= 5 and max(gaps, default=0) < 0.5,
          {"seconds": round(time.monotonic() - begin, 2), "ticks": len(ticks),
           "longest_gap_s": round(max(gaps, default=0), 3)})  # fmt: skip
    yield 0.5

    # Pick Performers: real mouse clicks at each performer's place in the preview
    with bpy.context.temp_override(window=window, screen=screen, area=preview, region=preview_region):
        picking = bpy.ops.pixelsep.pick("INVOKE_DEFAULT")
    check("pick_modal", picking == {"RUNNING_MODAL"}, sorted(picking))
    placement = operators.placement(scene, movie)
    report["clicks"] = {}
    for count, performer in enumerate(sidecar["performers"], start=1):
        x0, y0, x1, y1 = performer["boxes"][frame]
        target = ((x0 + x1) / 2, (y0 + y1) / 2)
        vx, vy = coords.movie_to_view(placement, *target)
        rx, ry = preview_region.view2d.view_to_region(vx, vy, clip=False)
        sx, sy = preview_region.x + rx, window.height - 1 - (preview_region.y + ry)  # X11: y down from the top
        xdotool("mousemove", sx, sy)
        yield 0.2
        xdotool("click", "1")
        yield from wait_until(lambda n=count: len(getattr(operators.read_recipe(movie), "sources", ())) >= n, 60)
        recipe = operators.read_recipe(movie)
        got = recipe.sources[count - 1].clicks[0] if recipe and len(recipe.sources) >= count else None
        report["clicks"][performer["name"]] = {"target": target, "screen": [sx, sy],
                                               "clicked": [got.x, got.y] if got else None}  # fmt: skip
        yield 0.3
    # one screen pixel is 1/zoom movie pixels: view_to_region and the mouse work in whole pixels
    view2d = preview_region.view2d
    zoom = (view2d.view_to_region(100.0, 0.0, clip=False)[0] - view2d.view_to_region(0.0, 0.0, clip=False)[0]) / 100
    tolerance = 1.0 / max(zoom, 1e-6)
    errors = [max(abs(c["clicked"][0] - c["target"][0]), abs(c["clicked"][1] - c["target"][1]))
              for c in report["clicks"].values() if c["clicked"]]  # fmt: skip
    check("mouse_clicks_add_sources", len(errors) == len(sidecar["performers"]) and max(errors) <= tolerance,
          {"errors_px": [round(e, 2) for e in errors], "tolerance_px": round(tolerance, 2)})  # fmt: skip
    xdotool("mousemove", preview_region.x + 10, window.height - preview_region.y - 10)
    xdotool("key", "Escape")
    yield 0.5
    recipe = operators.read_recipe(movie)
    separated = state(scene)
    stems = [s.strip for s in recipe.sources] + [recipe.residual_strip]
    check("stem_strips", all(name in separated and separated[name]["start"] == movie.frame_final_start
                             and separated[name]["end"] == movie.frame_final_end for name in stems),
          {name: separated.get(name) for name in stems})  # fmt: skip
    check("original_muted_kept", separated["duet.sound"]["mute"] and not before["duet.sound"]["mute"])

    # the heatmap overlay, drawn by the preview's draw handler on the GPU: the screen changes over
    # the movie's picture and nowhere else in the preview
    screenshot("heatmap-off.png")
    bpy.context.window_manager.pixelsep_heatmap = True
    preview.tag_redraw()
    yield from wait_until(lambda: overlay._cache["texture"] is not None, 20)
    yield 0.5
    screenshot("blender-panel.png")
    change = screen_change(out / "heatmap-off.png", out / "blender-panel.png", window)
    corners = [view2d.view_to_region(x, y, clip=False) for (x, y), _ in coords.visible_quad(placement)]
    x0, x1 = (preview_region.x + f([c[0] for c in corners]) for f in (min, max))
    y0, y1 = (preview_region.y + f([c[1] for c in corners]) for f in (min, max))
    # the share of pixels that changed visibly: over the picture, and in the preview around it
    # (between the toolbar and the sidebar, which overlap its region), 3 pixels off its edges (the
    # overlay covers the white line Blender draws around the frame)
    tools = [r for r in preview.regions if r.type == "TOOLS" and r.width > 1]
    left = max([r.x + r.width for r in tools] + [preview_region.x])
    right = min(sidebar.x, preview_region.x + preview_region.width) if sidebar.width > 1 else preview_region.x + preview_region.width
    changed = change > 0.02
    picture = changed[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].mean()
    around = np.ones(changed.shape, dtype=bool)
    around[: preview_region.y] = around[preview_region.y + preview_region.height :] = False
    around[:, :left] = around[:, right:] = False
    around[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = False
    elsewhere = changed[around].mean() if around.any() else 0.0
    check("heatmap_drawn", overlay._cache["texture"] is not None and picture > 0.5 and elsewhere < 0.01,
          {"changed_on_picture": round(float(picture), 3), "changed_around_it": round(float(elsewhere), 4),
           "picture": [x0, y0, x1, y1], "preview": [left, preview_region.y, right, preview_region.y + preview_region.height]})  # fmt: skip

    # Undo and Redo, from the keyboard over the preview: each click of the Pick tool is one step
    recipes = []

    def recipe_sources():
        movie = strips_of(window.scene.sequence_editor).get("duet")
        found = operators.read_recipe(movie) if movie else None
        return [s.name for s in found.sources] if found else None if movie is None else []

    xdotool("mousemove", preview_region.x + 20, window.height - preview_region.y - 20)
    for keys in ("ctrl+z", "ctrl+z", "ctrl+shift+z", "ctrl+shift+z"):
        xdotool("key", keys)
        yield 1.0
        recipes.append((recipe_sources(), state(window.scene)))
    one_source = {n: e for n, e in recipes[0][1].items() if n != "duet.source2"}
    check("undo_pick_steps",
          [r[0] for r in recipes] == [["source1"], [], ["source1"], ["source1", "source2"]]
          and recipes[1][1] == before and recipes[3][1] == separated
          and recipes[0][1].keys() == one_source.keys() and recipes[2][1] == recipes[0][1],
          [r[0] for r in recipes])  # fmt: skip

    # Remove Separation: the scene as before
    window.scene.sequence_editor.active_strip = strips_of(window.scene.sequence_editor)["duet"]
    with bpy.context.temp_override(window=window, screen=screen, area=preview, region=sidebar):
        bpy.ops.pixelsep.remove()
    yield 0.5
    removed = state(window.scene)
    check("remove_restores", removed == before, {"removed": removed, "before": before})
    screenshot("blender-removed.png")


def finish(code):
    report["ok"] = code == 0 and all(c["ok"] for c in report["checks"].values())
    (out / "report.json").write_text(json.dumps(report, indent=1))
    sys.stdout.flush()
    os._exit(0 if report["ok"] else 1)


runner = steps()


def tick():
    try:
        return next(runner)
    except StopIteration:
        finish(0)
    except Exception:
        report["error"] = traceback.format_exc()
        print(report["error"])
        finish(1)
    return None


bpy.app.timers.register(tick, first_interval=1.0, persistent=True)
