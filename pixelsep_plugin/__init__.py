"""pixelsep: click a performer in a video, get their sound as its own track (PixelPlayer as software).

The inference API (numpy, onnxruntime and PyAV only) is :class:`pixelsep_plugin.api.Separator`;
the query types are :class:`Point`, :class:`Box` and :class:`Source`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Box", "Point", "Separator", "Source", "__version__", "separate"]


def __getattr__(name: str):
    # Loaded on first use, so that importing the package (or its media layer) stays light.
    if name in ("Separator", "separate"):
        from pixelsep_plugin import api

        return getattr(api, name)
    if name in ("Point", "Box", "Source"):
        from pixelsep_plugin.runtime import query

        return getattr(query, name)
    raise AttributeError(f"module 'pixelsep_plugin' has no attribute {name!r}")
