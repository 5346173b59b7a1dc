"""The sound heatmap over the movie strip in the sequencer preview (the panel's "Heatmap" toggle).

At the current frame, the engine's energy map (for each feature cell, the share of the sound a
click there would take) is coloured by ``pixelsep_plugin.runtime.heatmap.heat_layer`` and drawn
as a texture over the strip's visible quad (``coords.visible_quad``), so it follows the strip's
offset, scale, rotation, crop and flips.
"""

from __future__ import annotations

import bpy
import numpy as np

from host_bridge.blender import coords

from . import operators

LAYER_LONG_SIDE = 256  # texture pixels along the movie's long side: the map has about 16 px cells
_handle = None
_cache: dict[str, object] = {"key": None, "texture": None}


def _texture(scene, movie):
    import gpu

    from pixelsep_plugin.runtime.heatmap import heat_layer

    analysis = operators.analysis_of(movie)
    if analysis is None:
        return None
    seconds = min(operators.movie_seconds(scene, movie), analysis.duration_seconds)
    key = (operators.clip_path(movie), round(seconds * 4))
    if _cache["key"] == key:
        return _cache["texture"]
    energy = operators.get_separator().energy_map(analysis, seconds)
    scale = LAYER_LONG_SIDE / max(analysis.width, analysis.height)
    width, height = max(2, round(analysis.width * scale)), max(2, round(analysis.height * scale))
    colour, alpha = heat_layer(energy, width, height)
    rgba = np.concatenate([colour / 255.0, alpha], axis=-1)[::-1]  # textures start at the bottom row
    data = gpu.types.Buffer("FLOAT", width * height * 4, rgba.astype(np.float32).ravel().tolist())
    _cache["key"], _cache["texture"] = key, gpu.types.GPUTexture((width, height), format="RGBA16F", data=data)
    return _cache["texture"]


def draw() -> None:
    context = bpy.context
    if not context.window_manager.pixelsep_heatmap:
        return
    movie = operators.active_movie(context)
    if movie is None:
        return
    texture = _texture(context.scene, movie)
    if texture is None:
        return
    import gpu
    from gpu_extras.batch import batch_for_shader

    quad = coords.visible_quad(operators.placement(context.scene, movie))
    shader = gpu.shader.from_builtin("IMAGE")
    batch = batch_for_shader(shader, "TRI_FAN", {"pos": [c for c, _ in quad], "texCoord": [uv for _, uv in quad]})
    gpu.state.blend_set("ALPHA")
    shader.uniform_sampler("image", texture)
    batch.draw(shader)
    gpu.state.blend_set("NONE")


def _redraw(self, context) -> None:
    for area in context.screen.areas if context.screen else []:
        if area.type == "SEQUENCE_EDITOR":
            area.tag_redraw()


def register() -> None:
    global _handle
    bpy.types.WindowManager.pixelsep_heatmap = bpy.props.BoolProperty(
        name="Heatmap", description="Show where the sound comes from over the movie in the preview", update=_redraw
    )
    _handle = bpy.types.SpaceSequenceEditor.draw_handler_add(draw, (), "PREVIEW", "POST_VIEW")


def unregister() -> None:
    global _handle
    if _handle is not None:
        bpy.types.SpaceSequenceEditor.draw_handler_remove(_handle, "PREVIEW")
        _handle = None
    _cache["key"] = _cache["texture"] = None
    del bpy.types.WindowManager.pixelsep_heatmap
