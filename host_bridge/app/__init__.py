"""The previewer (`pixelsep app`): watch a clip, click a performer, hear them alone, set volumes, export.

- :mod:`.model`: the pure edit state (clicks -> recipe sources, gains, mute/solo, undo/redo), the
  playback chunk order, the remix arithmetic, marker tracking and the heatmap colours. No Qt.
- :mod:`.engine`: the live preview over the engine's public API: the recipe's separation rendered in
  short chunks around the playhead first, the remix of any span with the current gains. No Qt.
- :mod:`.frames`: a seeking, forward-decoding frame reader through the engine's media layer.
- :mod:`.window`, :mod:`.audio`, :mod:`.workers`: the thin PyQt6 layer (widgets, QAudioSink, threads).
- :mod:`.main`: starts the window (``pixelsep app``, :mod:`host_bridge.cli.app`, imports PyQt6 only then).
"""
