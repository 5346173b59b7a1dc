"""Export the video net and the audio net to ONNX, with dynamic batch, frame-size and time axes.

The TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``, opset 17) is used: both
nets are plain conv stacks, it gives small graphs of standard operators (Conv with the eval-mode
BatchNorms folded in, ConvTranspose, BatchNormalization, Relu/LeakyRelu, Add, Concat, Sigmoid, MaxPool)
and, for the same weights, the same bytes on every run. Each file holds its weights inline (no external data; both nets are far below
the 2 GB protobuf limit).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from pixelsep_plugin.config import ModelConfig
from pixelsep_plugin.nets.builders import PixelPlayer

OPSET = 17
VIDEO_FILE = "video.onnx"
AUDIO_FILE = "audio.onnx"


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str], axes: dict) -> None:
    """Trace ``module`` on ``example`` and write a self-contained ONNX file at ``path``, then check it."""
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of torch.export, but is used deliberately
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(str(path), full_check=True)


def export_onnx(model: PixelPlayer, cfg: ModelConfig, out_dir: Path | str) -> dict[str, Path]:
    """Write the two ONNX graphs of ``model`` (in eval mode) into ``out_dir``; returns file name -> path.

    - ``video.onnx``: input ``frames`` float32 (N, 3, H, W), RGB in [0, 1], N, H and W dynamic ->
      output ``features`` float32 (N, K, ceil(H / 16), ceil(W / 16)) in (0, 1).
    - ``audio.onnx``: input ``log_magnitude`` float32 (N, 1, F, T), F = ``cfg.audio.log_freq_bins``
      fixed, N and T dynamic (T a multiple of 2**num_downs) -> output ``components`` float32
      (N, K, F, T).

    The model's training/eval mode is restored afterwards.
    """
    if model.cfg != cfg:
        raise ValueError(f"the model was built from config {model.cfg.name!r}, not from the config given")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {VIDEO_FILE: out_dir / VIDEO_FILE, AUDIO_FILE: out_dir / AUDIO_FILE}
    side = cfg.video_net.frame_size
    frames = torch.rand(1, 3, side, side + 2 * 16, generator=torch.Generator().manual_seed(0))
    spec = torch.randn(
        1, 1, cfg.audio.log_freq_bins, cfg.chunks.window_columns, generator=torch.Generator().manual_seed(0)
    )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _export(
                model.video_net,
                frames,
                paths[VIDEO_FILE],
                ("frames", "features"),
                {"frames": {0: "batch", 2: "height", 3: "width"}, "features": {0: "batch", 2: "rows", 3: "cols"}},
            )
            _export(
                model.audio_net,
                spec,
                paths[AUDIO_FILE],
                ("log_magnitude", "components"),
                {"log_magnitude": {0: "batch", 3: "columns"}, "components": {0: "batch", 3: "columns"}},
            )
    finally:
        model.train(was_training)
    return paths
