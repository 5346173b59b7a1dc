"""ONNX Runtime sessions for a model package's two nets.

The CUDA provider is used first when ``onnxruntime-gpu`` is installed and a GPU is visible, then
the CPU provider. A package is loaded once and reused for any number of clips.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixelsep_plugin.errors import ModelError
from pixelsep_plugin.modelstore import ModelPackage

if TYPE_CHECKING:
    import onnxruntime as ort

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(requested: list[str] | None = None) -> list[str]:
    """Providers to use, best first, among those this onnxruntime build offers."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(
                f"onnxruntime provider {missing[0]} is not available here (available: {', '.join(available)})"
            )
        return list(requested)
    return [p for p in PREFERRED_PROVIDERS if p in available] or list(available)


def _session(path: Path, providers: list[str], threads: int | None) -> ort.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Runs alternate with decoding: idle worker threads must not spin and take the decoder's cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises several private exception types
        raise ModelError(f"cannot load {path.name} with onnxruntime: {str(error).splitlines()[0]}") from error


class OnnxNets:
    """The video net and the audio net of one model package, ready to run.

    video(frames): frames float32 (N, 3, H, W) RGB in [0, 1] -> features float32 (N, K, h, w)
    audio(log_magnitude): float32 (N, 1, F, T) -> components float32 (N, K, F, T)
    """

    def __init__(self, package: ModelPackage, providers: list[str] | None = None, threads: int | None = None):
        self.package = package
        # requested providers are checked now (a clear error before any work); the sessions, and
        # onnxruntime itself, are loaded at the first run, so a clip whose analysis is cached never loads them
        self._requested = choose_providers(providers) if providers else None
        self._threads = threads

    @cached_property
    def providers(self) -> list[str]:
        return self._requested or choose_providers(None)

    @cached_property
    def _video(self) -> ort.InferenceSession:
        return _session(self.package.video_onnx, self.providers, self._threads)

    @cached_property
    def _audio(self) -> ort.InferenceSession:
        return _session(self.package.audio_onnx, self.providers, self._threads)

    @property
    def active_providers(self) -> list[str]:
        return self._audio.get_providers()

    def video(self, frames: np.ndarray) -> np.ndarray:
        return self._video.run(None, {"frames": np.ascontiguousarray(frames, dtype=np.float32)})[0]

    def audio(self, log_magnitude: np.ndarray) -> np.ndarray:
        return self._audio.run(None, {"log_magnitude": np.ascontiguousarray(log_magnitude, dtype=np.float32)})[0]
