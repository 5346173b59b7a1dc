"""The synthetic world's instruments: a picture (an emoji) and a sound (a General MIDI program).

Pitched instruments play melodies transposed into ``low..high`` (MIDI note numbers); percussion
instruments play rhythms on the drum kit notes in ``drum_notes`` (General MIDI percussion map).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DEFAULT_EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"


@dataclass(frozen=True)
class Instrument:
    name: str
    emoji: int  # Unicode code point
    program: int | None = None  # General MIDI program, 0-based; None for percussion
    low: int = 48
    high: int = 84
    drum_notes: tuple[int, ...] = ()

    @property
    def percussion(self) -> bool:
        return self.program is None


VOCABULARY: tuple[Instrument, ...] = (
    Instrument("violin", 0x1F3BB, 40, 55, 96),
    Instrument("trumpet", 0x1F3BA, 56, 55, 82),
    Instrument("saxophone", 0x1F3B7, 65, 49, 80),
    Instrument("guitar", 0x1F3B8, 24, 40, 79),
    Instrument("accordion", 0x1FA97, 21, 53, 89),
    Instrument("banjo", 0x1FA95, 105, 48, 79),
    Instrument("flute", 0x1FA88, 73, 60, 96),
    Instrument("piano", 0x1F3B9, 0, 36, 96),
    Instrument("horn", 0x1F4EF, 60, 34, 72),
    Instrument("voice", 0x1F3A4, 53, 48, 79),
    # snare, side stick, toms, kick
    Instrument("drum", 0x1F941, None, drum_notes=(38, 40, 37, 41, 43, 45, 47, 48, 50, 35, 36)),
    # congas, bongos
    Instrument("long drum", 0x1FA98, None, drum_notes=(62, 63, 64, 60, 61)),
    # maracas, shaker (cabasa), tambourine-free shakers
    Instrument("maracas", 0x1FA87, None, drum_notes=(70, 69, 82)),
)

BY_NAME = {instrument.name: instrument for instrument in VOCABULARY}


def get_instruments(names: list[str] | None) -> tuple[Instrument, ...]:
    """The named instruments (all of the vocabulary for None); ValueError for an unknown name."""
    if not names:
        return VOCABULARY
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown instrument {unknown[0]!r}; choose from {', '.join(BY_NAME)}")
    return tuple(BY_NAME[n] for n in names)
