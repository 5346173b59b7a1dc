"""Instrument pictures in many styles: emoji fonts and icon sets from the package registries, and
the project's own drawings.

A style turns an instrument into an RGBA picture cropped to its visible pixels. The styles:

| style | source | package |
| --- | --- | --- |
| ``noto`` | Noto Color Emoji font (bitmaps) | Debian ``fonts-noto-color-emoji`` |
| ``twemoji`` | Twemoji (flat, SVG) | npm ``@iconify-json/twemoji`` |
| ``fluent`` | Fluent Emoji (colour, gradients, SVG) | npm ``@iconify-json/fluent-emoji`` |
| ``fluent-flat`` | Fluent Emoji Flat (SVG) | npm ``@iconify-json/fluent-emoji-flat`` |
| ``fluent-3d`` | Fluent Emoji 3D (rendered bitmaps) | npm ``@lobehub/fluent-emoji-3d`` |
| ``fxemoji`` | Firefox OS emoji (SVG) | npm ``@iconify-json/fxemoji`` |
| ``game-icons`` | game-icons.net silhouettes, tinted (SVG) | npm ``@iconify-json/game-icons`` |
| ``drawn``, ``line``, ``silhouette`` | the project's drawings (:mod:`.drawings`) | none |
| ``emojione`` (held out) | Emoji One (SVG) | npm ``@iconify-json/emojione`` |

``emojione`` is the project's held-out picture style: never used in training or tuning, only in
the held-out-style test set. npm packages are looked up in ``$PIXELSEP_NPM`` (a ``node_modules``
folder), else in the repository's ``.npm/node_modules`` (``make setup`` installs them there).
"""

from __future__ import annotations

import io
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pixelsep_plugin.synth.drawings import DRAWINGS, drawing_svg

DEFAULT_EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_SIZE = 109  # the size Noto Color Emoji's bitmaps are drawn at
RENDER_SIZE = 160  # SVG pictures are rendered at this many pixels (then scaled per frame)

ICONIFY_PACKAGES = {
    "twemoji": "@iconify-json/twemoji",
    "fluent": "@iconify-json/fluent-emoji",
    "fluent-flat": "@iconify-json/fluent-emoji-flat",
    "fxemoji": "@iconify-json/fxemoji",
    "game-icons": "@iconify-json/game-icons",
    "emojione": "@iconify-json/emojione",
}
FLUENT_3D_PACKAGE = "@lobehub/fluent-emoji-3d"
NPM_PACKAGES = (*ICONIFY_PACKAGES.values(), FLUENT_3D_PACKAGE)

# The icon of each instrument in each icon set (iconify names; fxemoji has its own names).
EMOJI_ICONS = {
    "violin": "violin", "trumpet": "trumpet", "saxophone": "saxophone", "acoustic guitar": "guitar",
    "accordion": "accordion", "banjo": "banjo", "flute": "flute", "piano": "musical-keyboard",
    "horn": "postal-horn", "voice": "microphone", "drum": "drum", "congas": "long-drum", "maracas": "maracas",
}  # fmt: skip
FXEMOJI_ICONS = {
    "violin": "violin", "trumpet": "trumpet", "saxophone": "saxophone", "acoustic guitar": "guitar",
    "piano": "musicalkeyboard", "horn": "postalhorn", "voice": "microphone",
}  # fmt: skip
EMOJIONE_ICONS = {
    k: v for k, v in EMOJI_ICONS.items() if k in ("violin", "trumpet", "saxophone", "acoustic guitar", "piano", "horn", "voice", "drum")
}
GAME_ICONS = {
    "accordion": "accordion", "bagpipe": "bagpipes", "banjo": "banjo", "bassoon": "bassoon", "clarinet": "clarinet",
    "drum": "drum", "flute": "flute", "horn": "french-horn", "piano": "grand-piano", "acoustic guitar": "guitar",
    "maracas": "maracas", "voice": "microphone", "saxophone": "saxophone", "trumpet": "trumpet", "tuba": "tuba",
    "violin": "violin", "xylophone": "xylophone",
}  # fmt: skip
EMOJI_CODE_POINTS = {
    "violin": 0x1F3BB, "trumpet": 0x1F3BA, "saxophone": 0x1F3B7, "acoustic guitar": 0x1F3B8, "accordion": 0x1FA97,
    "banjo": 0x1FA95, "flute": 0x1FA88, "piano": 0x1F3B9, "horn": 0x1F4EF, "voice": 0x1F3A4, "drum": 0x1F941,
    "congas": 0x1FA98, "maracas": 0x1FA87,
}  # fmt: skip
ICON_NAMES = {
    "twemoji": EMOJI_ICONS, "fluent": EMOJI_ICONS, "fluent-flat": EMOJI_ICONS, "emojione": EMOJIONE_ICONS,
    "fxemoji": FXEMOJI_ICONS, "game-icons": GAME_ICONS,
}  # fmt: skip

TRAINING_STYLES = ("noto", "twemoji", "fluent", "fluent-flat", "fluent-3d", "fxemoji", "game-icons", "drawn", "line", "silhouette")
HELD_OUT_STYLES = ("emojione",)
STYLES = TRAINING_STYLES + HELD_OUT_STYLES
TINTED = ("game-icons", "line", "silhouette")  # one-colour styles: the colour is drawn per performer


def npm_root() -> Path:
    env = os.environ.get("PIXELSEP_NPM")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".npm" / "node_modules"


def _missing(package: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"the picture package {package} is not installed in {npm_root()}: run `npm install --prefix DIR {package}` "
        "and set PIXELSEP_NPM to DIR/node_modules"
    )


@lru_cache(maxsize=8)
def _iconify_set(style: str) -> dict:
    path = npm_root() / ICONIFY_PACKAGES[style] / "icons.json"
    if not path.is_file():
        raise _missing(ICONIFY_PACKAGES[style])
    return json.loads(path.read_text())


def has_picture(instrument: str, style: str) -> bool:
    """Whether ``style`` can draw ``instrument`` (without loading anything)."""
    if style in ("drawn", "line", "silhouette"):
        return instrument in DRAWINGS
    if style in ("noto", "fluent-3d"):
        return instrument in EMOJI_CODE_POINTS
    if style in ICON_NAMES:
        return instrument in ICON_NAMES[style]
    raise ValueError(f"unknown picture style {style!r}; choose from {', '.join(STYLES)}")


def styles_for(instrument: str, styles: tuple[str, ...] = TRAINING_STYLES) -> tuple[str, ...]:
    return tuple(s for s in styles if has_picture(instrument, s))


def _svg_to_image(svg: str) -> Image.Image:
    import cairosvg  # imported here: only the generator needs it

    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=RENDER_SIZE, output_height=RENDER_SIZE)
    return Image.open(io.BytesIO(png)).convert("RGBA")


def _crop(image: Image.Image, what: str) -> Image.Image:
    box = image.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if box is None:
        raise ValueError(f"{what} is empty")
    return image.crop(box)


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


@lru_cache(maxsize=512)
def picture(instrument: str, style: str, colour: tuple[int, int, int] = (40, 40, 40), font_path: str = DEFAULT_EMOJI_FONT) -> Image.Image:
    """``instrument`` in ``style`` as an RGBA image cropped to its visible pixels.

    ``colour`` is used by the one-colour styles (``game-icons``, ``line``, ``silhouette``)."""
    if not has_picture(instrument, style):
        raise ValueError(f"the picture style {style!r} has no {instrument}")
    if style == "noto":
        try:
            font = ImageFont.truetype(font_path, EMOJI_SIZE)
        except OSError:
            raise FileNotFoundError(
                f"cannot load the emoji font {font_path}; on Debian: apt-get install fonts-noto-color-emoji"
            ) from None
        canvas = Image.new("RGBA", (EMOJI_SIZE + 40, EMOJI_SIZE + 40), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((4, 4), chr(EMOJI_CODE_POINTS[instrument]), font=font, embedded_color=True)
        return _crop(canvas, f"the emoji of {instrument}")
    if style == "fluent-3d":
        path = npm_root() / FLUENT_3D_PACKAGE / "assets" / f"{EMOJI_CODE_POINTS[instrument]:x}.webp"
        if not path.is_file():
            raise _missing(FLUENT_3D_PACKAGE)
        image = Image.open(path).convert("RGBA")
        image.thumbnail((RENDER_SIZE, RENDER_SIZE))
        return _crop(image, str(path))
    if style in ("drawn", "line", "silhouette"):
        return _crop(_svg_to_image(drawing_svg(instrument, style, _hex(colour))), f"the drawing of {instrument}")
    data = _iconify_set(style)
    name = ICON_NAMES[style][instrument]
    icon = data["icons"].get(name)
    if icon is None:
        raise ValueError(f"{ICONIFY_PACKAGES[style]} has no icon {name!r}")
    width, height = icon.get("width", data.get("width", 16)), icon.get("height", data.get("height", 16))
    left, top = icon.get("left", 0), icon.get("top", 0)
    body = icon["body"].replace("currentColor", _hex(colour))
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{left} {top} {width} {height}">{body}</svg>'
    return _crop(_svg_to_image(svg), f"the {style} icon of {instrument}")


def random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated or dark colour for the one-colour styles."""
    if rng.random() < 0.3:
        v = int(rng.integers(10, 70))
        return (v, v, v)
    hue = float(rng.uniform(0, 1))
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue, float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.35, 0.95)))
    return (int(r * 255), int(g * 255), int(b * 255))


def check_styles(styles: tuple[str, ...]) -> None:
    """Raise FileNotFoundError (one line) when a package a style needs is missing."""
    for style in styles:
        if style not in STYLES:
            raise ValueError(f"unknown picture style {style!r}; choose from {', '.join(STYLES)}")
        if style in ICONIFY_PACKAGES and not (npm_root() / ICONIFY_PACKAGES[style] / "icons.json").is_file():
            raise _missing(ICONIFY_PACKAGES[style])
        if style == "fluent-3d" and not (npm_root() / FLUENT_3D_PACKAGE / "assets").is_dir():
            raise _missing(FLUENT_3D_PACKAGE)
        if style == "noto" and not Path(DEFAULT_EMOJI_FONT).is_file():
            raise FileNotFoundError(f"emoji font {DEFAULT_EMOJI_FONT} not found (on Debian: apt-get install fonts-noto-color-emoji)")
