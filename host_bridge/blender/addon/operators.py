"""Operators: analyse the active movie strip, add a source by a click, solo, remove the separation.

Everything decided here comes from ``host_bridge.blender.plan`` and ``coords``; this module reads
the scene into their plain values and writes their answers back.
"""

from __future__ import annotations

import threading
from pathlib import Path

import bpy

from host_bridge.blender import coords, plan

from . import compat

_separator = None
_analyses: dict[str, object] = {}  # clip path -> Analysis
_jobs: dict[str, AnalysisJob] = {}  # clip path -> running analysis


def get_separator():
    global _separator
    if _separator is None:
        from pixelsep_plugin.api import Separator

        _separator = Separator()  # the default model: the one the bundled pixelsep wheel carries
    return _separator


def active_movie(context):
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor else None
    return strip if strip is not None and strip.type == "MOVIE" else None


def clip_path(strip) -> str:
    return str(Path(bpy.path.abspath(strip.filepath)).resolve())


def placement(scene, strip) -> coords.StripPlacement:
    element = strip.elements[0]
    transform, crop = strip.transform, strip.crop
    return coords.StripPlacement(
        element.orig_width, element.orig_height,
        offset_x=transform.offset_x, offset_y=transform.offset_y,
        scale_x=transform.scale_x, scale_y=transform.scale_y,
        rotation=transform.rotation, origin_x=transform.origin[0], origin_y=transform.origin[1],
        crop_left=crop.min_x, crop_right=crop.max_x, crop_bottom=crop.min_y, crop_top=crop.max_y,
        flip_x=strip.use_flip_x, flip_y=strip.use_flip_y,
        pixel_aspect=scene.render.pixel_aspect_x / scene.render.pixel_aspect_y,
    )  # fmt: skip


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def movie_fps(scene, strip) -> float:
    """The movie file's own frame rate (the scene's where Blender does not know it)."""
    fps = float(getattr(strip, "fps", 0.0) or 0.0)
    return fps if fps > 0 else scene_fps(scene)


def movie_seconds(scene, strip, frame: float | None = None) -> float:
    """The movie's own time of the picture shown at a scene frame (the current one by default)."""
    frame = scene.frame_current if frame is None else frame
    return plan.picture_seconds(frame, strip.frame_start, movie_fps(scene, strip))


def spans(scene) -> list[plan.StripSpan]:
    editor = scene.sequence_editor
    return [plan.StripSpan(s.name, s.channel, s.frame_final_start, s.frame_final_end) for s in compat.strips(editor)]


class AnalysisJob:
    """An analysis in a background thread: progress for the UI, cancel from Esc."""

    def __init__(self, clip: str):
        self.clip = clip
        self.stage, self.done, self.total = "starting", 0.0, 1.0
        self.cancelled = False
        self.error: str | None = None
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _progress(self, stage: str, done: float, total: float) -> None:
        self.stage, self.done, self.total = stage, done, max(total, 1e-9)

    def _run(self) -> None:
        try:
            self.result, _ = get_separator().analyze(self.clip, progress=self._progress, cancel=lambda: self.cancelled)
        except Exception as error:  # reported in the UI as one line
            self.error = str(error) or type(error).__name__

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)


def analysis_of(strip):
    return _analyses.get(clip_path(strip))


def read_edit(strip, scene=None) -> plan.Edit | None:
    """The movie strip's edit; with ``scene``, pointed at its stem strips as they are named now."""
    text = strip.get(plan.RECIPE_PROPERTY)
    edit = plan.read_edit(text, strip.get(plan.HOST_PROPERTY)) if text else None
    if edit is not None and scene is not None and scene.sequence_editor:
        collection = compat.strips(scene.sequence_editor)
        tagged = [(s.name, s[plan.STRIP_PROPERTY]) for s in collection if plan.STRIP_PROPERTY in s]
        plan.locate_stems(edit, tagged, {s.name for s in collection})
    return edit


def store_edit(movie, edit: plan.Edit) -> None:
    movie[plan.RECIPE_PROPERTY], movie[plan.HOST_PROPERTY] = edit.stored()


def recipe_as_played(scene, edit: plan.Edit):
    """The edit's recipe with the gains and mutes its stem strips play at (at the current frame)."""
    collection = compat.strips(scene.sequence_editor)
    mixes = {s.name: plan.StripMix(float(s.volume), bool(s.mute)) for s in collection if s.type == "SOUND"}
    return plan.recipe_as_played(edit, mixes)


def _temp_root() -> Path:
    return Path(bpy.app.tempdir or "/tmp") / "pixelsep"


def render_edit(context, movie, edit: plan.Edit, span_at: float | None = None) -> None:
    """Write every stem of ``edit`` (through its effect chains, where a source has one) and make the
    scene's sound strips match it.

    With ``span_at`` (the playhead, seconds of the clip) the span around it (:func:`plan.first_span`)
    is rendered first and played at once by stand-ins as long as the stems (:mod:`..preview`); the
    whole stems are rendered in a background thread and swapped in when done (a timer, or
    :func:`finish_stem_renders` in scripts), so the UI stays responsive."""
    from pixelsep_plugin.api import render_recipe

    analysis = analysis_of(movie)
    if analysis is None:
        raise RuntimeError("analyse the movie strip first")
    recipe, state = edit.recipe, edit.state
    folder, stored_prefix = plan.stem_folder(bpy.data.filepath, recipe.clip.sha256, movie.name, _temp_root())
    # every render gets new file names: a strip's sound is swapped, never its strip (which keeps its
    # channel, volume, mute and keyframes), and the files an Undo may return to stay as they were
    state.revision += 1
    stems_recipe = plan.stem_recipe(recipe, movie.name, state.revision)
    if span_at is not None:
        stand_ins = _render_first_span(analysis, stems_recipe, movie.name, state.revision, folder, span_at)
        if stand_ins is not None:
            place_stems(context.scene, movie, edit, stand_ins, stored_prefix)
            job = StemJob(context.scene.name, movie.name, state.revision, folder, stored_prefix,
                          lambda: render_recipe(get_separator(), analysis, stems_recipe, folder, stems=True,
                                                remix=False, peaks="warn"))  # fmt: skip
            _stem_jobs.append(job)
            if not bpy.app.timers.is_registered(_poll_stem_jobs):
                bpy.app.timers.register(_poll_stem_jobs, first_interval=0.2)
            return
    wm = context.window_manager
    wm.progress_begin(0, 100)  # the cursor's percentage while the stems are written (the UI waits)
    try:
        result = render_recipe(get_separator(), analysis, stems_recipe, folder, stems=True, remix=False, peaks="warn",
                               progress=lambda stage, done, total: wm.progress_update(100.0 * done / max(total, 1e-9)))  # fmt: skip
    finally:
        wm.progress_end()
    place_stems(context.scene, movie, edit, _played_files(result), stored_prefix)


def _played_files(result) -> dict[str, Path]:
    """Source name (and "residual") -> the file its strip plays: a processed stem plays its source."""
    return {**result.stems, "residual": result.residual, **result.processed}


def _render_first_span(analysis, stems_recipe, movie_name: str, revision: int, folder: Path, span_at: float):
    """The stand-ins of one render (name -> file), rendered for the span around ``span_at`` only; None
    when a stand-in cannot be written (past the WAV size limit): then the whole stems are rendered."""
    from host_bridge.blender import preview
    from pixelsep_plugin.api import separation_for

    separation = separation_for(get_separator(), analysis, stems_recipe)
    channels = int(analysis.meta["media"]["num_channels"])
    if preview.span_wav_bytes(separation.num_samples, channels) - 8 > preview.MAX_RIFF_BYTES:
        return None
    start, end = plan.first_span(span_at, separation.num_samples / separation.sample_rate)
    block = separation.render_span(start, end)
    files = plan.stem_files(stems_recipe, movie_name, revision, folder)
    index = {source.name: i for i, source in enumerate(separation.sources)}
    out = {}
    for name, path in files.items():
        samples = block.residual if name == "residual" else block.stems[index[name]]
        out[name] = preview.write_span_wav(plan.span_file(path), samples, block.sample_start, separation.num_samples,
                                           separation.sample_rate)  # fmt: skip
    return out


def place_stems(scene, movie, edit: plan.Edit, files: dict[str, Path], stored_prefix: str) -> None:
    """Make the scene's sound strips play ``files`` (source name and "residual" -> file): an existing
    stem strip gets the file as its sound, a missing one is made; the movie's own sound is muted."""
    from pixelsep_plugin.recipe import db_to_linear

    recipe, state = edit.recipe, edit.state
    collection = compat.strips(scene.sequence_editor)
    # sound strips that play the movie's own audio are muted, never deleted
    if not state.muted:
        for strip in collection:
            if strip.type == "SOUND" and strip.sound and Path(bpy.path.abspath(strip.sound.filepath)).resolve() == recipe.clip.path:
                state.muted[strip.name] = bool(strip.mute)
                strip[plan.MUTED_PROPERTY] = plan.muted_tag(edit, strip.mute)  # found again if renamed
                strip.mute = True
    start, end = plan.stem_span(int(movie.frame_start), movie.frame_final_start, movie.frame_final_end,
                                scene_fps(scene), movie_fps(scene, movie))  # fmt: skip
    for entry in [*recipe.sources, None]:
        name = "residual" if entry is None else entry.name
        stored = stored_prefix + files[name].name
        existing = collection.get(state.residual_strip if entry is None else state.strips.get(name, ""))
        if existing is not None:
            existing.sound = bpy.data.sounds.load(stored, check_existing=False)
            continue
        channel = plan.free_channels(spans(scene), start, end, 1, lowest=movie.channel + 1)[0]
        strip = collection.new_sound(plan.strip_name(movie.name, name), stored, channel, int(movie.frame_start))
        strip.frame_final_start, strip.frame_final_end = start, min(end, strip.frame_final_end)
        strip[plan.STRIP_PROPERTY] = plan.stem_tag(edit, movie.name, None if entry is None else entry.name)
        gain = recipe.residual if entry is None else entry
        strip.volume, strip.mute = db_to_linear(gain.gain_db), gain.mute
        if entry is None:
            state.residual_strip = strip.name
        else:
            state.strips[name] = strip.name
    store_edit(movie, edit)


class StemJob:
    """The whole stems of one render, written in a background thread (engine only, no bpy there);
    the main thread swaps them in (:func:`_poll_stem_jobs`)."""

    def __init__(self, scene: str, movie: str, revision: int, folder: Path, stored_prefix: str, render):
        self.scene, self.movie, self.revision = scene, movie, revision
        self.folder, self.stored_prefix = folder, stored_prefix
        self.result = None
        self.error = ""
        self.thread = threading.Thread(target=self._run, args=(render,), daemon=True)
        self.thread.start()

    def _run(self, render) -> None:
        try:
            self.result = render()
        except Exception as error:  # reported by the main thread
            self.error = _one_line(error)


_stem_jobs: list[StemJob] = []


def _apply_stem_job(job: StemJob) -> str:
    """Swap a finished job's stems in, if its render is still the movie's latest; says what happened."""
    scene = bpy.data.scenes.get(job.scene)
    movie = compat.strips(scene.sequence_editor).get(job.movie) if scene and scene.sequence_editor else None
    edit = read_edit(movie, scene) if movie is not None else None
    if job.error:
        return f"stems of {job.movie} failed: {job.error}"
    if not plan.is_current_render(edit, job.revision):
        return f"stems of {job.movie} r{job.revision} dropped: the separation changed since (a later click, Undo, Remove)"
    place_stems(scene, movie, edit, _played_files(job.result), job.stored_prefix)
    return f"stems of {job.movie} r{job.revision} in place"


def _poll_stem_jobs():
    """Timer: swap in the stems of finished background renders; runs while any is pending."""
    for job in [j for j in _stem_jobs if not j.thread.is_alive()]:
        _stem_jobs.remove(job)
        print("PixelSep:", _apply_stem_job(job))
    return 0.25 if _stem_jobs else None


def finish_stem_renders(timeout: float | None = None) -> list[str]:
    """Wait for the background stem renders and swap their stems in (for scripts, and Blender
    without a window, where timers do not run); returns what happened to each."""
    done = []
    while _stem_jobs:
        job = _stem_jobs.pop(0)
        job.thread.join(timeout)
        if job.thread.is_alive():
            _stem_jobs.insert(0, job)
            raise TimeoutError(f"the stems of {job.movie} are still rendering")
        done.append(_apply_stem_job(job))
    return done
def remove_separation(context, movie) -> None:
    """Delete the stem strips, unmute what was muted, forget the edit.

    The stem files stay on disk, so that Undo can bring the strips back with their sound."""
    edit = read_edit(movie, context.scene)
    if edit is None:
        return
    collection = compat.strips(context.scene.sequence_editor)
    for name in [*edit.state.strips.values(), edit.state.residual_strip]:
        strip = collection.get(name) if name else None
        if strip is not None:
            collection.remove(strip)
    restored = set()
    for strip in collection:  # by their tags: the user may have renamed them
        was_muted = plan.mute_before(edit, strip.get(plan.MUTED_PROPERTY))
        if was_muted is not None:
            strip.mute = was_muted
            del strip[plan.MUTED_PROPERTY]
            restored.add(strip.name)
    for name, was_muted in edit.state.muted.items():  # untagged (a recipe from before the tags)
        strip = collection.get(name)
        if strip is not None and name not in restored and plan.MUTED_PROPERTY not in strip:
            strip.mute = was_muted
    del movie[plan.RECIPE_PROPERTY]
    if plan.HOST_PROPERTY in movie:
        del movie[plan.HOST_PROPERTY]


class PIXELSEP_OT_analyze(bpy.types.Operator):
    """Analyse the active movie strip once (in the background); clicks are instant afterwards"""

    bl_idname = "pixelsep.analyze"
    bl_label = "Analyze"
    bl_options = {"REGISTER"}

    _timer = None
    _job: AnalysisJob | None = None

    @classmethod
    def poll(cls, context):
        return active_movie(context) is not None

    def execute(self, context):  # synchronous: scripts and tests
        movie = active_movie(context)
        path = clip_path(movie)
        try:
            _analyses[path], _ = get_separator().analyze(path)
        except Exception as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        return {"FINISHED"}

    def invoke(self, context, event):
        path = clip_path(active_movie(context))
        if path in _jobs:
            self.report({"WARNING"}, "this movie is being analysed already")
            return {"CANCELLED"}
        self._job = _jobs[path] = AnalysisJob(path)
        self._timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancelled = True
        if event.type == "TIMER":
            context.window_manager.pixelsep_progress = job.fraction
            for area in context.screen.areas if context.screen else []:
                if area.type == "SEQUENCE_EDITOR":
                    area.tag_redraw()
            if not job.thread.is_alive():
                context.window_manager.event_timer_remove(self._timer)
                _jobs.pop(job.clip, None)
                context.window_manager.pixelsep_progress = 0.0
                if job.result is not None:
                    _analyses[job.clip] = job.result
                    self.report({"INFO"}, "analysis done: click performers in the preview")
                    return {"FINISHED"}
                self.report({"WARNING"} if job.cancelled else {"ERROR"}, "analysis cancelled" if job.cancelled else job.error)
                return {"CANCELLED"}
        return {"PASS_THROUGH"}


def add_source(context, movie, x: float, y: float, seconds: float, name: str, span_first: bool = False) -> str:
    """Add (or extend) a source clicked at movie pixel (x, y) at ``seconds``; returns its name.

    ``span_first``: the stems around ``seconds`` play at once, the whole stems follow (see
    :func:`render_edit`)."""
    from pixelsep_plugin.recipe import clip_ref, new_recipe

    analysis = analysis_of(movie)
    if analysis is None:
        raise RuntimeError("analyse the movie strip first")
    edit = read_edit(movie, context.scene)
    if edit is None:
        package = get_separator().package
        clip = clip_ref(clip_path(movie), sha256=analysis.meta["clip"]["sha256"])
        edit = plan.Edit(new_recipe(clip, package.model_id, package.checksum))
    else:  # the strips' volumes and mutes are the sources' gains: keep what the user set
        edit.recipe = recipe_as_played(context.scene, edit)
    seconds = min(seconds, analysis.duration_seconds)
    name = plan.add_click(edit, name, x, y, seconds)
    render_edit(context, movie, edit, span_at=seconds if span_first else None)
    return name


class PIXELSEP_OT_add_source(bpy.types.Operator):
    """Add a source at a point of the preview (view coordinates) at the current frame"""

    bl_idname = "pixelsep.add_source"
    bl_label = "Add Source"
    bl_options = {"REGISTER", "UNDO"}

    view_x: bpy.props.FloatProperty(name="View X")
    view_y: bpy.props.FloatProperty(name="View Y")
    source_name: bpy.props.StringProperty(name="Name", description="empty: source1, source2, ...")
    span_first: bpy.props.BoolProperty(
        name="Span First",
        description="Render the 10 s around the playhead first, to hear it at once, then the whole stems in the "
        "background (default: on with a window; scripts without one get the whole stems at once)",
        default=True,
    )

    @classmethod
    def poll(cls, context):
        movie = active_movie(context)
        return movie is not None and analysis_of(movie) is not None

    def execute(self, context):
        movie = active_movie(context)
        analysis = analysis_of(movie)
        point = coords.view_to_movie(placement(context.scene, movie), self.view_x, self.view_y,
                                     frame_size=(analysis.width, analysis.height))  # fmt: skip
        if point is None:
            self.report({"WARNING"}, "the click is outside the movie strip's picture")
            return {"CANCELLED"}
        try:
            # without a window no timer runs to swap the whole stems in: there only when asked for
            span_first = self.span_first and (not bpy.app.background or self.properties.is_property_set("span_first"))
            name = add_source(context, movie, point[0], point[1], movie_seconds(context.scene, movie), self.source_name,
                              span_first=span_first)  # fmt: skip
        except Exception as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{name}: stem strip added")
        return {"FINISHED"}


class PIXELSEP_OT_pick(bpy.types.Operator):
    """Click performers in the preview to add them as sources; Esc or right-click to stop"""

    bl_idname = "pixelsep.pick"
    bl_label = "Pick Performers"

    @classmethod
    def poll(cls, context):
        movie = active_movie(context)
        return movie is not None and analysis_of(movie) is not None

    def invoke(self, context, event):
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set("PixelSep: click a performer in the preview; Esc to stop")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            context.workspace.status_text_set(None)
            return {"FINISHED"}
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            region = next((r for a in context.screen.areas if a.type == "SEQUENCE_EDITOR"
                           for r in a.regions if r.type == "PREVIEW"
                           and r.x <= event.mouse_x < r.x + r.width and r.y <= event.mouse_y < r.y + r.height), None)  # fmt: skip
            if region is None:
                return {"PASS_THROUGH"}
            vx, vy = region.view2d.region_to_view(event.mouse_x - region.x, event.mouse_y - region.y)
            if bpy.ops.pixelsep.add_source(view_x=vx, view_y=vy) == {"FINISHED"}:
                # an operator called from Python pushes no undo step of its own: one per click
                bpy.ops.ed.undo_push(message="PixelSep: Add Source")
            return {"RUNNING_MODAL"}
        return {"PASS_THROUGH"}


class PIXELSEP_OT_solo(bpy.types.Operator):
    """Hear only this source (mutes the other stems and the residual); again to hear all"""

    bl_idname = "pixelsep.solo"
    bl_label = "Solo"
    bl_options = {"REGISTER", "UNDO"}

    strip_name: bpy.props.StringProperty()

    def execute(self, context):
        movie = active_movie(context)
        edit = read_edit(movie, context.scene) if movie else None
        if edit is None:
            return {"CANCELLED"}
        collection = compat.strips(context.scene.sequence_editor)
        names = [*edit.state.strips.values(), edit.state.residual_strip]
        others = [collection.get(n) for n in names if n != self.strip_name and collection.get(n)]
        target = collection.get(self.strip_name)
        soloed = target is not None and not target.mute and all(s.mute for s in others)
        for strip in others:
            strip.mute = not soloed
        if target is not None:
            target.mute = False
        return {"FINISHED"}


class PIXELSEP_OT_remove(bpy.types.Operator):
    """Remove the stem strips and unmute the movie's sound: the scene as before (the stem files stay, for Undo)"""

    bl_idname = "pixelsep.remove"
    bl_label = "Remove Separation"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        movie = active_movie(context)
        return movie is not None and plan.RECIPE_PROPERTY in movie

    def execute(self, context):
        remove_separation(context, active_movie(context))
        return {"FINISHED"}


def _one_line(error: Exception) -> str:
    """An error as the one line the UI reports."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _active_edit(context):
    movie = active_movie(context)
    edit = read_edit(movie, context.scene) if movie is not None else None
    return movie, edit


class _FileOperator:
    """A file browser that asks for a path, then ``run(context, movie, edit, path)``; errors are one line."""

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    suffixes: tuple[str, ...] = ()

    @classmethod
    def poll(cls, context):
        movie = active_movie(context)
        return movie is not None and plan.RECIPE_PROPERTY in movie

    def invoke(self, context, event):
        if not self.filepath:
            movie = active_movie(context)
            folder = Path(bpy.path.abspath("//")) if bpy.data.filepath else Path.home()
            self.filepath = str(folder / f"{plan.safe_name(movie.name)}{self.suffixes[0]}")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        path = Path(bpy.path.abspath(self.filepath))
        if path.suffix.lower() not in self.suffixes:
            self.report({"ERROR"}, f"the file must end in {', '.join(self.suffixes)}, not {path.name}")
            return {"CANCELLED"}
        movie, edit = _active_edit(context)
        try:
            message = self.run(context, movie, edit, path)
        except Exception as error:
            self.report({"ERROR"}, _one_line(error))
            return {"CANCELLED"}
        self.report({"INFO"}, message)
        return {"FINISHED"}


class PIXELSEP_OT_save_recipe(_FileOperator, bpy.types.Operator):
    """Save the separation as a recipe (JSON) that `pixelsep render` and every other host open"""

    bl_idname = "pixelsep.save_recipe"
    bl_label = "Save Recipe"
    suffixes = (".json",)
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def run(self, context, movie, edit, path):
        from pixelsep_plugin.recipe import save

        recipe = recipe_as_played(context.scene, edit)
        recipe.output.folder = plan.safe_name(path.stem) + "-stems"
        save(recipe, path)
        return f"recipe saved: {path}"


class PIXELSEP_OT_open_recipe(_FileOperator, bpy.types.Operator):
    """Open a recipe made on this movie strip's clip (anywhere: the command line, another .blend) and apply it"""

    bl_idname = "pixelsep.open_recipe"
    bl_label = "Open Recipe"
    bl_options = {"REGISTER", "UNDO"}
    suffixes = (".json",)
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        movie = active_movie(context)
        return movie is not None and analysis_of(movie) is not None

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def run(self, context, movie, edit, path):
        from pixelsep_plugin.recipe import db_to_linear, load

        loaded = load(path)
        analysis = analysis_of(movie)
        edit = plan.adopt(edit, loaded, Path(clip_path(movie)), analysis.meta["clip"]["sha256"])
        collection = compat.strips(context.scene.sequence_editor)
        render_edit(context, movie, edit)
        for entry in [*edit.recipe.sources, None]:  # the recipe's gains and mutes on every stem strip
            gain = edit.recipe.residual if entry is None else entry
            strip = collection.get(edit.state.residual_strip if entry is None else edit.state.strips.get(entry.name, ""))
            if strip is not None:
                strip.volume, strip.mute = db_to_linear(gain.gain_db), gain.mute
        return f"recipe opened: {len(edit.recipe.sources)} source(s)"


class PIXELSEP_OT_rerender(bpy.types.Operator):
    """Render the stems again with their effect chains and swaps (each stem strip keeps its place, volume keyframes and name)"""

    bl_idname = "pixelsep.rerender"
    bl_label = "Re-render Stems"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        movie = active_movie(context)
        return movie is not None and plan.RECIPE_PROPERTY in movie and analysis_of(movie) is not None

    def execute(self, context):
        movie, edit = _active_edit(context)
        try:
            edit.recipe = recipe_as_played(context.scene, edit)
            render_edit(context, movie, edit)
        except Exception as error:
            self.report({"ERROR"}, _one_line(error))
            return {"CANCELLED"}
        self.report({"INFO"}, "stems rendered again")
        return {"FINISHED"}


class PIXELSEP_OT_render_remix(_FileOperator, bpy.types.Operator):
    """Render the remix (the stems at their strips' volumes and mutes) to an audio file or a video with it as its sound"""

    bl_idname = "pixelsep.render_remix"
    bl_label = "Render Remix"
    suffixes = (".wav", ".flac", ".mp3", ".opus", ".m4a", ".mp4", ".mov", ".mkv")

    def run(self, context, movie, edit, path):
        from pixelsep_plugin.api import render_remix_file

        recipe = recipe_as_played(context.scene, edit)
        written, warnings = render_remix_file(get_separator(), analysis_of(movie) or get_separator().analyze(recipe.clip.path)[0],
                                              recipe, path)  # fmt: skip
        return f"remix written: {written}" + (f" ({warnings[0]})" if warnings else "")


class PIXELSEP_OT_export_timeline(_FileOperator, bpy.types.Operator):
    """Export a timeline for another editor: the picture, the original sound (muted), one track per stem"""

    bl_idname = "pixelsep.export_timeline"
    bl_label = "Export Timeline"
    suffixes = (".otio", ".xml", ".fcpxml", ".kdenlive", ".mlt", ".xges")

    def run(self, context, movie, edit, path):
        from host_bridge.timeline import export_timeline

        recipe = recipe_as_played(context.scene, edit)
        analysis = analysis_of(movie) or get_separator().analyze(recipe.clip.path)[0]
        written = export_timeline(get_separator(), analysis, recipe, path)
        return f"timeline written: {written}"


@bpy.app.handlers.persistent
def _move_temporary_stems(filepath, *args):
    """On the first save, stems made before it move from the temporary folder next to the .blend."""
    scene_list = bpy.data.scenes
    for scene in scene_list:
        if not scene.sequence_editor:
            continue
        for strip in compat.strips(scene.sequence_editor):
            if strip.type != "SOUND" or plan.STRIP_PROPERTY not in strip or not strip.sound:
                continue
            move = plan.relocate_after_save(strip.sound.filepath, _temp_root(), filepath)
            if move is None:
                continue
            source, target, stored = move
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_file():
                source.replace(target)
            strip.sound.filepath = stored


CLASSES = (
    PIXELSEP_OT_analyze, PIXELSEP_OT_add_source, PIXELSEP_OT_pick, PIXELSEP_OT_solo, PIXELSEP_OT_remove,
    PIXELSEP_OT_save_recipe, PIXELSEP_OT_open_recipe, PIXELSEP_OT_render_remix, PIXELSEP_OT_export_timeline,
    PIXELSEP_OT_rerender,
)  # fmt: skip


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.WindowManager.pixelsep_progress = bpy.props.FloatProperty(subtype="FACTOR", min=0.0, max=1.0)
    bpy.app.handlers.save_pre.append(_move_temporary_stems)


def unregister() -> None:
    if _move_temporary_stems in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.remove(_move_temporary_stems)
    del bpy.types.WindowManager.pixelsep_progress
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
