"""PixelSep for Blender's Video Sequence Editor: click a performer in the preview, get a stem strip.

The engine (``pixelsep_plugin``) and the pure planning modules (``host_bridge.blender``) come from
the bundled pixelsep wheel; this package only gathers from and creates in the scene.
"""

from __future__ import annotations

from . import operators, overlay, panel


def register() -> None:
    operators.register()
    overlay.register()
    panel.register()


def unregister() -> None:
    panel.unregister()
    overlay.unregister()
    operators.unregister()
