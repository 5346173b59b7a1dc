"""The sidebar panel in the Sequencer (category "PixelSep")."""

from __future__ import annotations

import bpy

from host_bridge.blender import plan

from . import compat, operators


class PIXELSEP_PT_panel(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "PixelSep"
    bl_label = "PixelSep"

    def draw(self, context):
        layout = self.layout
        movie = operators.active_movie(context)
        if movie is None:
            layout.label(text="Select a movie strip", icon="INFO")
            return
        layout.label(text=movie.name, icon="FILE_MOVIE")
        job = operators._jobs.get(operators.clip_path(movie))
        if job is not None:
            layout.progress(factor=job.fraction, type="BAR", text=f"{job.stage} (Esc cancels)")
        elif operators.analysis_of(movie) is None:
            layout.operator("pixelsep.analyze", icon="VIEWZOOM")
            return
        else:
            layout.operator("pixelsep.pick", icon="EYEDROPPER")
            layout.prop(context.window_manager, "pixelsep_heatmap", icon="LIGHT_SUN")
            layout.operator("pixelsep.open_recipe", icon="FILE_FOLDER")
        edit = operators.read_edit(movie, context.scene)
        if edit is None:
            return
        collection = compat.strips(context.scene.sequence_editor)
        box = layout.box()
        chained = False
        entries = [(edit.state.strips.get(s.name, ""), s.effects) for s in edit.recipe.sources]
        for name, effects in [*entries, (edit.state.residual_strip, edit.recipe.residual.effects)]:
            strip = collection.get(name) if name else None
            if strip is None:
                continue
            row = box.row(align=True)
            row.prop(strip, "name", text="")  # renaming the strip names the stem: its tag keeps it found
            row.prop(strip, "volume", text="")
            row.prop(strip, "mute", text="", icon="HIDE_ON" if strip.mute else "HIDE_OFF")
            row.operator("pixelsep.solo", text="", icon="SOLO_ON").strip_name = name
            summary = plan.chain_summary(effects)
            if summary:
                chained = True
                box.label(text=summary, icon="MODIFIER")
        if chained:
            layout.operator("pixelsep.rerender", icon="FILE_REFRESH")
        row = layout.row(align=True)
        row.operator("pixelsep.save_recipe", icon="FILE_TICK")
        row.operator("pixelsep.render_remix", icon="RENDER_ANIMATION")
        layout.operator("pixelsep.export_timeline", icon="SEQUENCE")
        layout.operator("pixelsep.remove", icon="TRASH")


def register() -> None:
    bpy.utils.register_class(PIXELSEP_PT_panel)


def unregister() -> None:
    bpy.utils.unregister_class(PIXELSEP_PT_panel)
