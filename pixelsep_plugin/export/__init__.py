"""ONNX export and model package writing (torch; never imported on the inference path).

``build_untrained`` lives in :mod:`pixelsep_plugin.export.package`; the module
``pixelsep_plugin.export.build_untrained`` is its command line.
"""

from pixelsep_plugin.export.onnx_export import OPSET, export_onnx
from pixelsep_plugin.export.package import default_card, load_torch_model, write_package

__all__ = ["OPSET", "default_card", "export_onnx", "load_torch_model", "write_package"]
