"""ONNX export and model package writing (torch)."""
