"""``pixelsep effects RECIPE``: list and edit the effect chains of a recipe's sources.

    pixelsep effects duet.json --list
    pixelsep effects duet.json --source accordion --add 'Reverb(room_size=0.5, wet_level=0.3)'
    pixelsep effects duet.json --source residual --clear --add 'HighpassFilter(cutoff_frequency_hz=120)'
    pixelsep effects duet.json --source long-drum --vst3 /usr/lib/vst3/ZamCompX2.vst3 --param ratio=4

An effect is written as a call: a pedalboard plugin's class (or a ``pixelsep.*`` processor) with
its parameters by name, literal values only (numbers, strings, True/False); it is read with
``ast``, never run. ``--vst3 PATH`` adds a VST3 plugin, its parameters set by the ``--param
NAME=VALUE`` that follow it. Every new effect is built once at the clip's sample rate and channels
(so a wrong name or a value out of range is refused in one line) before the recipe is rewritten, in
place and atomically. ``--clear`` empties the chain first; ``--list`` prints every chain after the edit.
``pixelsep render RECIPE`` then writes each processed stem as ``<prefix>.<source>.fx.<ext>``.
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path
from typing import Any

from pixelsep_plugin.errors import InputError

MAX_EFFECT_TEXT = 4096
PLUGIN_FILE_SUFFIXES = (".vst3", ".component")
RESIDUAL = "residual"


class _EditAction(argparse.Action):
    """Keeps --add and --vst3 in the order given; --param belongs to the --vst3 before it."""

    def __call__(self, parser, namespace, values, option_string=None):
        edits = list(getattr(namespace, "edits", None) or [])
        if self.dest == "param":
            if not edits or edits[-1][0] != "vst3":
                parser.error("--param sets a parameter of the --vst3 plugin given before it")
            edits[-1][2].append(values)
        else:
            edits.append((self.dest, values, []))
        namespace.edits = edits


def add_parser(commands) -> None:
    effects = commands.add_parser(
        "effects",
        help="list or edit the effect chains of a recipe's sources (pedalboard plugins, VST3)",
        description=(
            "Adds effects to a source's chain (or the residual's), clears it, or lists every chain. "
            "Write an effect as a call with its parameters by name: 'Reverb(room_size=0.5, wet_level=0.3)', "
            "'Compressor(threshold_db=-20, ratio=4)', 'PitchShift(semitones=-2)'. The recipe is rewritten "
            "in place; `pixelsep render RECIPE` renders the processed stems and the remix."
        ),
    )
    effects.add_argument("recipe", type=Path)
    effects.add_argument("--source", metavar="NAME", help="the source whose chain is edited (or: residual)")
    effects.add_argument("--add", dest="add", action=_EditAction, metavar="'Plugin(name=value, ...)'",
                         help="append an effect (repeatable, in order)")  # fmt: skip
    effects.add_argument("--vst3", dest="vst3", action=_EditAction, metavar="PATH",
                         help="append a VST3 plugin (repeatable)")  # fmt: skip
    effects.add_argument("--param", dest="param", action=_EditAction, metavar="NAME=VALUE",
                         help="a parameter of the --vst3 plugin before it, in its own units (repeatable)")  # fmt: skip
    effects.add_argument("--clear", action="store_true", help="remove the source's effects first")
    effects.add_argument("--list", action="store_true", help="print every source's effect chain")


def _literal(text: str, node: ast.AST, what: str) -> Any:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InputError(f"cannot read {what} in {text!r}: values are numbers, 'text' or True/False") from None
    if value is None or not isinstance(value, bool | int | float | str):
        raise InputError(f"cannot read {what} in {text!r}: values are numbers, 'text' or True/False")
    return value


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def parse_effect(text: str):
    """An effect from call syntax: ``"Reverb(room_size=0.5)"``, ``"Invert"``, ``"pixelsep.Loudness(target_lufs=-16)"``.

    Parsed with ``ast`` and read with ``ast.literal_eval``: nothing is run. Raises InputError."""
    from pixelsep_plugin.recipe import Effect

    example = "write it like Reverb(room_size=0.5, wet_level=0.3)"
    if len(text) > MAX_EFFECT_TEXT:
        raise InputError(f"effect text is longer than {MAX_EFFECT_TEXT} characters")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise InputError(f"cannot read effect {text!r}: {example}") from None
    call = node if isinstance(node, ast.Call) else None
    name = _dotted(call.func if call is not None else node)
    if name is None:
        raise InputError(f"cannot read effect {text!r}: {example}")
    parameters: dict[str, Any] = {}
    if call is not None:
        if call.args:
            raise InputError(f"effect {text!r}: give its parameters by name, e.g. {name}(name=value)")
        for keyword in call.keywords:
            if keyword.arg is None:
                raise InputError(f"effect {text!r}: give its parameters by name, e.g. {name}(name=value)")
            if keyword.arg in parameters:
                raise InputError(f"effect {text!r}: {keyword.arg} is given twice")
            parameters[keyword.arg] = _literal(text, keyword.value, keyword.arg)
    return Effect(name, parameters)


def parse_parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value): a number, true/false, or else the text itself (a named value)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise InputError(f"cannot read --param {text!r}: write it like ratio=4 or mode=Peak")
    if value.lower() in ("true", "false"):
        return name, value.lower() == "true"
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return name, value
    return name, parsed if isinstance(parsed, bool | int | float | str) else value


def describe(effect) -> str:
    """An effect as it is given on the command line: the call ``--add`` reads, or ``--vst3 PATH --param
    NAME=VALUE ...`` for a plugin file (and the size of its saved state, when it has one)."""
    if effect.plugin.lower().endswith(PLUGIN_FILE_SUFFIXES) or "/" in effect.plugin or "\\" in effect.plugin:
        text = " ".join([f"--vst3 {effect.plugin}", *(f"--param {k}={v}" for k, v in effect.parameters.items())])
    else:
        arguments = ", ".join(f"{key}={value!r}" for key, value in effect.parameters.items())
        text = f"{effect.plugin}({arguments})"
    if effect.state is not None:
        text += f" [saved state, {len(effect.state)} base64 characters]"
    return text


def _num_channels(channel_layout: str) -> int:
    import av

    try:
        return len(av.AudioLayout(channel_layout).channels)
    except (ValueError, av.error.FFmpegError):
        raise InputError(f"recipe: unknown channel layout {channel_layout!r}") from None


def _check(recipe, name: str, effects: list) -> None:
    """Build each effect once for the stem it will process (no audio is rendered)."""
    from pixelsep_plugin.effects import StemContext, check_effects

    def no_stem():
        raise InputError(f"the stem of {name} is not rendered while effects are checked")

    context = StemContext(name, recipe.clip.sample_rate, _num_channels(recipe.clip.channel_layout),
                          recipe.clip.num_samples, no_stem, base_folder=recipe.base_folder)  # fmt: skip
    check_effects(effects, context)


def _print_chains(recipe) -> None:
    for name, effects in [*((s.name, s.effects) for s in recipe.sources), (RESIDUAL, recipe.residual.effects)]:
        if not effects:
            print(f"{name}: no effects")
            continue
        print(f"{name}:")
        for index, effect in enumerate(effects, 1):
            print(f"  {index}. {describe(effect)}")


def run(args) -> int:
    from pixelsep_plugin import recipe as rcp
    from pixelsep_plugin.recipe import Effect

    edits = getattr(args, "edits", None) or []
    if args.recipe.suffix.lower() != ".json":
        raise InputError(f"a recipe is a .json file, not {args.recipe.name}")
    if not (edits or args.clear or args.list):
        raise InputError("nothing to do: give --add, --vst3, --clear or --list")
    if (edits or args.clear) and not args.source:
        raise InputError("say whose chain to edit: --source NAME (or --source residual)")
    added: list[Effect] = []
    for kind, text, parameters in edits:  # every argument read before the recipe is opened
        if kind == "add":
            added.append(parse_effect(text))
        else:
            path = os.path.abspath(os.path.expanduser(text))
            if not path.lower().endswith(PLUGIN_FILE_SUFFIXES):
                raise InputError(f"--vst3 takes the path of a .vst3 plugin, not {text!r}")
            added.append(Effect(path, dict(parse_parameter(p) for p in parameters)))
    recipe = rcp.load(args.recipe)
    if edits or args.clear:
        target = recipe.residual if args.source == RESIDUAL else recipe.source(args.source)
        if target is None:
            names = ", ".join([s.name for s in recipe.sources] + [RESIDUAL])
            raise InputError(f"no source named {args.source!r}: the sources are {names}")
        _check(recipe, args.source, added)
        target.effects = ([] if args.clear else list(target.effects)) + added
        saved = rcp.save(recipe, args.recipe)
        chain = ", ".join(describe(e) for e in target.effects) or "none"
        print(f"{args.source}'s effects: {chain}")
        print(f"recipe: {saved}; render it: pixelsep render {args.recipe}")
    if args.list:
        _print_chains(recipe)
    return 0
