"""The project's own instrument drawings, as SVG, for instruments no picture package draws.

Each drawing is a list of shapes in a 100 x 100 box; a shape is an SVG element whose fill is a
colour role (``body``, ``dark``, ``metal``, ``light``). :func:`drawing_svg` renders a drawing in one
of three manners:

- ``drawn``: filled in the instrument's colours, with dark outlines;
- ``line``: outlines only, on nothing (a sketch);
- ``silhouette``: every shape in one flat colour (like a pictogram).

Every instrument of the vocabulary has a drawing, so each has at least these three styles.
"""

from __future__ import annotations

COLOURS = {
    "wood": ("#b5651d", "#5a2d0c", "#d9d9d9", "#f2d3a0"),
    "dark wood": ("#7b3f12", "#3b1d08", "#d9d9d9", "#d6a86a"),
    "brass": ("#e0a526", "#7a5508", "#f5df8a", "#fff1b8"),
    "black": ("#2b2b2b", "#0d0d0d", "#c8c8c8", "#6a6a6a"),
    "red": ("#c0392b", "#5e140d", "#d9d9d9", "#f1a89f"),
    "skin": ("#e8d2a6", "#6b4a1f", "#b0b0b0", "#fff6e0"),
    "tartan": ("#2e7d32", "#0f3d12", "#c62828", "#a5d6a7"),
    "silver": ("#b8bcc2", "#4a4f57", "#e9edf2", "#ffffff"),
}


def _ellipse(cx, cy, rx, ry, role="body"):
    return f'<ellipse cx="{cx}" cy="{cy}" rx="{rx}" ry="{ry}" fill="{{{role}}}"/>'


def _rect(x, y, w, h, role="body", r=0, rot=None):
    transform = f' transform="rotate({rot[0]} {rot[1]} {rot[2]})"' if rot else ""
    return f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{r}" fill="{{{role}}}"{transform}/>'


def _path(d, role="body"):
    return f'<path d="{d}" fill="{{{role}}}"/>'


def _strings(x0, y0, x1, y1, count, spread):
    lines = []
    for i in range(count):
        off = (i - (count - 1) / 2) * spread
        lines.append(f'<line x1="{x0 + off}" y1="{y0}" x2="{x1 + off}" y2="{y1}" stroke="{{metal}}" stroke-width="0.6"/>')
    return lines


def _figure_eight(cx, top, width, height, waist=0.62):
    """A violin/guitar body outline: two lobes joined at a waist."""
    w, h = width / 2, height
    upper, lower = top + 0.3 * h, top + 0.72 * h
    return (
        f"M{cx},{top} C{cx + w * 0.9},{top} {cx + w * 0.95},{upper} {cx + w * waist},{top + 0.48 * h} "
        f"C{cx + w * 1.1},{top + 0.55 * h} {cx + w * 1.05},{top + h} {cx},{top + h} "
        f"C{cx - w * 1.05},{top + h} {cx - w * 1.1},{top + 0.55 * h} {cx - w * waist},{top + 0.48 * h} "
        f"C{cx - w * 0.95},{upper} {cx - w * 0.9},{top} {cx},{top} Z"
    ), lower


def _bowed(scale: float, body: str = "wood", neck_top: float = 4, endpin: bool = False, bow: bool = False) -> tuple[str, list[str]]:
    width, height = 38 * scale, 58 * scale
    top = (88 if endpin else 96) - height
    outline, _ = _figure_eight(50, top, width, height)
    shapes = [
        _rect(47.5, neck_top, 5, top - neck_top + 10, "dark"),
        _path(outline),
        _path(f"M{50 - 9 * scale},{top + 0.45 * height} q3,-4 0,-8 M{50 + 9 * scale},{top + 0.45 * height} q-3,-4 0,-8", "dark"),
        _rect(44, top + 0.72 * height, 12, 2.5, "light"),
        *_strings(50, neck_top + 2, 50, top + 0.72 * height, 4, 1.2),
    ]
    if endpin:
        shapes.append(_rect(49, top + height, 2, 10, "metal"))
    if bow:
        shapes.append('<line x1="14" y1="30" x2="90" y2="80" stroke="{dark}" stroke-width="2"/>')
        shapes.append('<line x1="16" y1="33" x2="90" y2="83" stroke="{light}" stroke-width="0.8"/>')
    return body, shapes


def _guitar(scale: float, body: str, hole: bool = True, neck: float = 5) -> tuple[str, list[str]]:
    width, height = 52 * scale, 52 * scale
    top = 97 - height
    outline, _ = _figure_eight(50, top, width, height, waist=0.7)
    shapes = [_rect(50 - neck / 2, 3, neck, top - 3 + 6, "dark"), _rect(50 - neck / 2 - 2, 1, neck + 4, 8, "dark", 2), _path(outline)]
    if hole:
        shapes.append(_ellipse(50, top + 0.55 * height, 7 * scale, 7 * scale, "dark"))
    shapes += [_rect(42, top + 0.8 * height, 16, 3, "dark"), *_strings(50, 4, 50, top + 0.81 * height, 6, 0.8)]
    return body, shapes


def _electric_bass():
    shapes = [
        _rect(47.5, 2, 5, 60, "dark"),
        _rect(45, 1, 10, 9, "dark", 2),
        _path("M36,56 C30,48 40,44 46,50 L54,50 C62,40 74,46 66,58 C76,70 70,96 50,96 C30,96 26,72 36,56 Z"),
        _rect(42, 70, 16, 4, "metal"),
        _rect(42, 80, 16, 3, "metal"),
        *_strings(50, 4, 50, 83, 4, 1.1),
    ]
    return "red", shapes


def _banjo():
    return "skin", [
        _rect(47.5, 2, 5, 52, "dark"),
        _rect(45, 1, 10, 8, "dark", 2),
        _ellipse(50, 72, 25, 25, "metal"),
        _ellipse(50, 72, 22, 22),
        _rect(44, 86, 12, 2.5, "dark"),
        *_strings(50, 4, 50, 88, 5, 0.9),
    ]


def _pipa():
    return "wood", [
        _path("M44,6 L56,6 L54,30 L46,30 Z", "dark"),
        _path("M46,8 q-8,-4 -6,-7 M54,8 q8,-4 6,-7", "dark"),
        _path("M50,24 C70,24 80,60 76,78 C72,94 28,94 24,78 C20,60 30,24 50,24 Z"),
        _rect(40, 80, 20, 3, "dark"),
        *[_rect(47, 32 + 5 * i, 6, 1.5, "light") for i in range(6)],
        *_strings(50, 8, 50, 81, 4, 1.4),
    ]


def _erhu():
    return "dark wood", [
        _rect(48.5, 2, 3, 82, "dark"),
        _rect(44, 8, 12, 3, "dark", 1),
        _rect(44, 16, 12, 3, "dark", 1),
        _path("M40,78 L60,78 L62,92 L38,92 Z"),
        _ellipse(50, 78, 10, 3, "light"),
        '<line x1="18" y1="70" x2="86" y2="52" stroke="{metal}" stroke-width="1.5"/>',
        _rect(16, 66, 5, 8, "dark", 1),
    ]


def _guzheng():
    shapes = [_path("M6,70 L88,18 C94,15 98,22 94,26 L14,86 C8,90 2,76 6,70 Z")]
    for i in range(9):
        t = 0.15 + 0.08 * i
        x, y = 6 + 88 * t, 70 - 52 * t
        shapes.append(_path(f"M{x},{y + 6} l3,-2 l2,4 l-3,2 Z", "light"))
    for i in range(7):
        shapes.append(
            f'<line x1="{8 + i * 0.6}" y1="{72 + i * 2}" x2="{88 + i * 0.9}" y2="{20 + i * 1.4}" stroke="{{metal}}" stroke-width="0.5"/>'
        )
    return "wood", shapes


def _flute():
    shapes = [_rect(4, 44, 92, 8, "body", 3, rot=(-20, 50, 48))]
    for i in range(7):
        shapes.append(_ellipse(22 + 9 * i, 57 - 3.3 * i, 2.2, 2.2, "dark"))
    return "silver", shapes


def _clarinet(length: float = 88, width: float = 9, body: str = "black", bell: float = 11):
    top = 96 - length
    shapes = [
        _rect(50 - width / 2, top, width, length - 8),
        _path(f"M{50 - width / 2},{96 - 10} L{50 - bell},{96} L{50 + bell},{96} L{50 + width / 2},{96 - 10} Z"),
        _rect(50 - 3, top - 2, 6, 8, "dark", 1),
    ]
    for i in range(8):
        y = top + 14 + i * (length - 30) / 8
        shapes.append(_ellipse(50, y, 2, 2, "metal"))
        shapes.append(_rect(50 + width / 2 - 1, y - 0.5, 4, 1.2, "metal"))
    return body, shapes


def _bassoon():
    return "dark wood", [
        _rect(46, 8, 12, 88, "body", 3),
        _rect(38, 40, 9, 56, "body", 3),
        _path("M47,42 C40,30 30,28 24,22", "dark"),
        '<path d="M46,42 C38,28 30,26 22,20" stroke="{metal}" stroke-width="2" fill="none"/>',
        _rect(45, 92, 14, 5, "metal", 1),
        *[_ellipse(52, 30 + 9 * i, 2, 2, "metal") for i in range(6)],
    ]


def _saxophone():
    return "brass", [
        _path("M40,6 L46,6 L46,66 C46,80 58,82 60,70 L60,52 L56,46 L74,46 L70,52 L70,72 C70,96 36,98 36,70 L36,10 Z"),
        '<path d="M42,6 C40,2 32,2 28,6" stroke="{dark}" stroke-width="2.5" fill="none"/>',
        *[_ellipse(41, 22 + 8 * i, 2.6, 2.6, "light") for i in range(6)],
    ]


def _trumpet():
    return "brass", [
        _rect(8, 44, 62, 5, "body", 2),
        _rect(22, 54, 44, 5, "body", 2),
        _path("M66,42 L94,30 L94,64 L66,52 Z"),
        _rect(4, 43, 6, 7, "dark", 1),
        *[_rect(34 + 9 * i, 34, 5, 26, "light", 1) for i in range(3)],
        *[_rect(33 + 9 * i, 30, 7, 4, "dark", 1) for i in range(3)],
    ]


def _tuba():
    return "brass", [
        _path("M46,4 L70,4 L64,20 L64,66 C64,92 24,96 22,72 C20,56 34,48 46,52 L46,20 Z"),
        _ellipse(40, 72, 13, 13, "light"),
        *[_rect(30 + 7 * i, 34, 4, 16, "metal", 1) for i in range(4)],
        _ellipse(58, 4, 13, 3, "dark"),
    ]


def _horn():
    return "brass", [
        _ellipse(46, 52, 30, 30, "body"),
        _ellipse(46, 52, 22, 22, "light"),
        _ellipse(46, 52, 16, 16, "body"),
        _ellipse(46, 52, 10, 10, "light"),
        _path("M66,70 L92,84 L86,96 L60,76 Z"),
        _rect(40, 26, 4, 14, "metal", 1),
        _rect(48, 26, 4, 14, "metal", 1),
    ]


def _bagpipe():
    return "tartan", [
        _path("M30,50 C20,80 60,98 78,78 C92,62 70,40 52,44 C44,46 38,44 30,50 Z"),
        _path("M36,56 L74,80", "light"),
        _rect(40, 6, 4, 44, "dark", 1, rot=(-15, 42, 40)),
        _rect(52, 4, 4, 44, "dark", 1, rot=(-8, 54, 40)),
        _rect(64, 12, 4, 36, "dark", 1, rot=(5, 66, 40)),
        _rect(46, 74, 5, 24, "dark", 1, rot=(25, 48, 80)),
        _rect(10, 52, 22, 3.5, "dark", 1, rot=(-20, 20, 54)),
    ]


def _drum():
    return "red", [
        _rect(16, 36, 68, 44),
        _ellipse(50, 80, 34, 9, "body"),
        _ellipse(50, 36, 34, 9, "light"),
        '<path d="M16,40 L30,78 L44,40 L58,78 L72,40 L84,70" stroke="{metal}" stroke-width="1.5" fill="none"/>',
        _rect(10, 8, 3, 34, "dark", 1, rot=(-30, 12, 30)),
        _rect(86, 8, 3, 34, "dark", 1, rot=(30, 88, 30)),
    ]


def _congas():
    shapes = []
    for cx, top in ((34, 14), (66, 24)):
        shapes += [
            _path(f"M{cx - 13},{top} C{cx - 20},{top + 30} {cx - 16},{top + 60} {cx - 9},{96} L{cx + 9},{96} "
                  f"C{cx + 16},{top + 60} {cx + 20},{top + 30} {cx + 13},{top} Z"),  # fmt: skip
            _ellipse(cx, top, 13, 4, "light"),
            _rect(cx - 16, top + 30, 32, 2.5, "metal", 1),
        ]
    return "wood", shapes


def _xylophone():
    shapes = [_rect(8, 40, 84, 4, "dark", 1, rot=(8, 50, 42)), _rect(8, 70, 84, 4, "dark", 1, rot=(-8, 50, 72))]
    colours = ("body", "light", "body", "light", "body", "light", "body", "light")
    for i, role in enumerate(colours):
        length = 54 - 4 * i
        shapes.append(_rect(12 + 10 * i, 58 - length / 2, 8, length, role, 1.5))
    shapes.append(_rect(70, 6, 2.5, 28, "dark", 1, rot=(30, 72, 20)))
    shapes.append(_ellipse(64, 8, 4, 4, "metal"))
    return "wood", shapes


def _maracas():
    shapes = []
    for cx, angle in ((36, -18), (64, 18)):
        shapes += [
            _rect(cx - 2.5, 50, 5, 44, "dark", 2, rot=(angle, cx, 60)),
            f'<ellipse cx="{cx}" cy="34" rx="15" ry="20" fill="{{body}}" transform="rotate({angle} {cx} 60)"/>',
            f'<path d="M{cx - 12},30 L{cx + 12},30 M{cx - 12},38 L{cx + 12},38" stroke="{{light}}" stroke-width="2.5" '
            f'transform="rotate({angle} {cx} 60)"/>',
        ]
    return "red", shapes


def _piano():
    shapes = [_rect(4, 30, 92, 44, "dark", 2), _rect(8, 46, 84, 26, "light")]
    for i in range(14):
        shapes.append(_rect(8 + 6 * i, 46, 5.6, 26, "metal"))
    for i in (0, 1, 3, 4, 5, 7, 8, 10, 11, 12):
        shapes.append(_rect(12 + 6 * i, 46, 3.4, 15, "dark"))
    return "black", shapes


def _accordion():
    shapes = [_rect(8, 24, 20, 56, "body", 2), _rect(72, 24, 20, 56, "body", 2)]
    for i in range(8):
        shapes.append(_rect(28 + 5.5 * i, 26 + (i % 2) * 2, 5.5, 52 - (i % 2) * 4, "dark" if i % 2 else "light"))
    for i in range(9):
        shapes.append(_rect(10, 28 + 5.5 * i, 16, 4.5, "metal"))
    for i in range(12):
        shapes.append(_ellipse(78 + 8 * (i % 2), 30 + 4.2 * i, 1.8, 1.8, "metal"))
    return "red", shapes


def _voice():
    return "silver", [
        _rect(46, 46, 8, 48, "dark", 3),
        _ellipse(50, 28, 16, 20, "body"),
        *[_rect(36, 16 + 6 * i, 28, 1.5, "dark") for i in range(4)],
        _rect(40, 46, 20, 5, "metal", 2),
    ]


DRAWINGS = {
    "accordion": _accordion,
    "acoustic guitar": lambda: _guitar(1.0, "wood"),
    "bagpipe": _bagpipe,
    "banjo": _banjo,
    "bassoon": _bassoon,
    "cello": lambda: _bowed(1.35, "dark wood", neck_top=2, endpin=True),
    "clarinet": _clarinet,
    "congas": _congas,
    "drum": _drum,
    "electric bass": _electric_bass,
    "erhu": _erhu,
    "flute": _flute,
    "guzheng": _guzheng,
    "piano": _piano,
    "pipa": _pipa,
    "saxophone": _saxophone,
    "trumpet": _trumpet,
    "tuba": _tuba,
    "ukulele": lambda: _guitar(0.62, "wood", neck=4),
    "violin": lambda: _bowed(0.9, "wood", neck_top=18, bow=True),
    "xylophone": _xylophone,
    "horn": _horn,
    "voice": _voice,
    "maracas": _maracas,
}

MANNERS = ("drawn", "line", "silhouette")


def drawing_svg(instrument: str, manner: str, colour: str = "#333333", size: int = 256) -> str:
    """The instrument's drawing as an SVG document of ``size`` pixels; ``colour`` is the
    silhouette's and the line's colour."""
    if manner not in MANNERS:
        raise ValueError(f"manner must be one of {', '.join(MANNERS)}, not {manner!r}")
    try:
        palette_name, shapes = DRAWINGS[instrument]()
    except KeyError:
        raise ValueError(f"no drawing of {instrument!r}") from None
    body, dark, metal, light = COLOURS[palette_name]
    if manner == "drawn":
        roles = {"body": body, "dark": dark, "metal": metal, "light": light}
        style = f'stroke="{dark}" stroke-width="0.8"'
    elif manner == "silhouette":
        roles = dict.fromkeys(("body", "dark", "metal", "light"), colour)
        style = ""
    else:
        roles = dict.fromkeys(("body", "dark", "metal", "light"), "none")
        style = f'stroke="{colour}" stroke-width="1.6" stroke-linejoin="round"'
    text = "\n".join(shape.format(**roles) for shape in shapes)
    if manner == "line":  # the strings and other stroked details keep their own strokes: give them the line colour
        text = text.replace('stroke="none"', f'stroke="{colour}"')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="-2 -2 104 104" width="{size}" height="{size}">'
        f'<g {style}>{text}</g></svg>'
    )
