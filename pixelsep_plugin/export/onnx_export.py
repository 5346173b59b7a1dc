"""Export the video net and the audio net to ONNX with dynamic batch, size and time axes."""

from __future__ import annotations

from pathlib import Path

import torch

from pixelsep_plugin.nets.builders import PixelPlayer

OPSET = 17


def export_onnx(model: PixelPlayer, out_dir: Path | str) -> dict[str, Path]:
    """Write ``video.onnx`` (frames (N, 3, H, W) -> features (N, K, h, w)) and ``audio.onnx``
    (log_magnitude (N, 1, F, T) -> components (N, K, F, T)), from the model in eval mode."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    was_training = model.training
    model.eval()
    paths = {"video": out_dir / "video.onnx", "audio": out_dir / "audio.onnx"}
    side = cfg.video_net.frame_size
    frames = torch.rand(1, 3, side, side + 64)
    spec = torch.randn(1, 1, cfg.audio.log_freq_bins, cfg.chunks.window_columns)
    with torch.no_grad():
        torch.onnx.export(
            model.video_net,
            (frames,),
            str(paths["video"]),
            input_names=["frames"],
            output_names=["features"],
            dynamic_axes={
                "frames": {0: "batch", 2: "height", 3: "width"},
                "features": {0: "batch", 2: "cells_y", 3: "cells_x"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        torch.onnx.export(
            model.audio_net,
            (spec,),
            str(paths["audio"]),
            input_names=["log_magnitude"],
            output_names=["components"],
            dynamic_axes={"log_magnitude": {0: "batch", 3: "columns"}, "components": {0: "batch", 3: "columns"}},
            opset_version=OPSET,
            dynamo=False,
        )
    model.train(was_training)
    return paths
