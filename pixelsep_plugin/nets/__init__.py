"""PixelPlayer's nets in torch (training and export only; inference runs their ONNX graphs)."""

from pixelsep_plugin.nets.builders import NET_BUILDERS, PixelPlayer, build_pixelplayer
from pixelsep_plugin.nets.frontend import TorchFrontEnd
from pixelsep_plugin.nets.resnet import BasicBlock, DilatedResNet18, load_imagenet_weights
from pixelsep_plugin.nets.synthesizer import Synthesizer
from pixelsep_plugin.nets.unet import AudioUNet, unet_widths
from pixelsep_plugin.nets.video import VideoNet, pool_clip

__all__ = [
    "NET_BUILDERS",
    "AudioUNet",
    "BasicBlock",
    "DilatedResNet18",
    "PixelPlayer",
    "Synthesizer",
    "TorchFrontEnd",
    "VideoNet",
    "build_pixelplayer",
    "load_imagenet_weights",
    "pool_clip",
    "unet_widths",
]
