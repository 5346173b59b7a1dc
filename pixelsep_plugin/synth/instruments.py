"""The synthetic world's instruments: the 21 of MUSIC-21 plus horn, voice and maracas.

Each has a General MIDI program (or drum-kit notes for percussion), a playing range, how it is
played (sustained instruments get vibrato, some glide between notes) and pictures in several
styles (:mod:`.pictures`). Where General MIDI has no such instrument the nearest program stands in
(``stand_in`` says which); the model card lists them.

Pitched instruments play melodies transposed into ``low..high`` (MIDI note numbers); percussion
instruments play rhythms on the drum kit notes in ``drum_notes`` (General MIDI percussion map).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int | None = None  # General MIDI program, 0-based; None for percussion
    low: int = 48
    high: int = 84
    drum_notes: tuple[int, ...] = ()
    vibrato_cents: float = 0.0  # depth of the vibrato on long notes (sustained instruments)
    glide: float = 0.0  # chance that a note slides in from the previous pitch (erhu, voice, ...)
    stand_in: str = ""  # when the General MIDI program only stands in for the instrument

    @property
    def percussion(self) -> bool:
        return self.program is None


VOCABULARY: tuple[Instrument, ...] = (
    Instrument("accordion", 21, 53, 89),
    Instrument("acoustic guitar", 25, 40, 79),
    Instrument("bagpipe", 109, 57, 81),
    Instrument("banjo", 105, 48, 79),
    Instrument("bassoon", 70, 34, 72, vibrato_cents=15),
    Instrument("cello", 42, 36, 76, vibrato_cents=30),
    Instrument("clarinet", 71, 50, 89, vibrato_cents=5),
    # congas, bongos (MUSIC-21's congas; the project's earlier "long drum")
    Instrument("congas", None, drum_notes=(62, 63, 64, 60, 61)),
    # snare, side stick, toms, kick
    Instrument("drum", None, drum_notes=(38, 40, 37, 41, 43, 45, 47, 48, 50, 35, 36)),
    Instrument("electric bass", 33, 28, 60),
    Instrument("erhu", 110, 62, 93, vibrato_cents=40, glide=0.35, stand_in="General MIDI Fiddle (110) with slides"),
    Instrument("flute", 73, 60, 96, vibrato_cents=20),
    Instrument("guzheng", 107, 50, 86, glide=0.15, stand_in="General MIDI Koto (107)"),
    Instrument("piano", 0, 36, 96),
    Instrument("pipa", 106, 50, 84, stand_in="General MIDI Shamisen (106)"),
    Instrument("saxophone", 65, 49, 80, vibrato_cents=20, glide=0.05),
    Instrument("trumpet", 56, 55, 82, vibrato_cents=10),
    Instrument("tuba", 58, 28, 58),
    Instrument("ukulele", 24, 60, 81, stand_in="General MIDI Nylon Guitar (24), high register"),
    Instrument("violin", 40, 55, 96, vibrato_cents=35, glide=0.05),
    Instrument("xylophone", 13, 65, 96),
    Instrument("horn", 60, 34, 72, vibrato_cents=8),
    Instrument("voice", 53, 48, 79, vibrato_cents=45, glide=0.2, stand_in="General MIDI Voice Oohs (53)"),
    # maracas, cabasa, shaker
    Instrument("maracas", None, drum_notes=(70, 69, 82)),
)

BY_NAME = {instrument.name: instrument for instrument in VOCABULARY}
# names the project used before (sidecars of older sets)
ALIASES = {"guitar": "acoustic guitar", "long drum": "congas"}
# The instruments the project's first model knew (its 13, under today's names).
FIRST_THIRTEEN = (
    "violin", "trumpet", "saxophone", "acoustic guitar", "accordion", "banjo", "flute", "piano", "horn", "voice",
    "drum", "congas", "maracas",
)  # fmt: skip


def get_instruments(names: list[str] | None) -> tuple[Instrument, ...]:
    """The named instruments (all of the vocabulary for None); ValueError for an unknown name."""
    if not names:
        return VOCABULARY
    names = [ALIASES.get(n, n) for n in names]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown instrument {unknown[0]!r}; choose from {', '.join(BY_NAME)}")
    return tuple(BY_NAME[n] for n in names)
