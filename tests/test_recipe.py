"""The recipe document: golden files, round trips, the schema, and one clear line for each bad input."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest

from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.errors import InputError

GOLDEN = Path(__file__).resolve().parent / "golden"
SHA = "0123456789abcdef" * 4
MODEL_SHA = "fedcba9876543210" * 4


def golden_recipe(tmp_path: Path) -> rcp.Recipe:
    clip = rcp.ClipRef(
        path=tmp_path / "clips" / "concert.mp4",
        sha256=SHA,
        duration_seconds=12.5,
        sample_rate=48000,
        channel_layout="stereo",
        num_samples=600000,
        width=1280,
        height=720,
        frame_rate="30000/1001",
        rotation_degrees=0,
        audio_offset_seconds=0.0,
    )
    recipe = rcp.Recipe(clip, rcp.ModelRef("pixelsep-small", MODEL_SHA))
    recipe.sources.append(
        rcp.SourceEdit(
            "trumpet",
            [rcp.PartRef(640.5, 360, 5.0), rcp.PartRef(600, 300, 9.25)],
            gain_db=6.0,
            effects=[rcp.Effect("Reverb", {"room_size": 0.3})],
        )
    )
    recipe.sources.append(rcp.SourceEdit("tuba", [rcp.PartRef(100, 80, 0.0, 400, 600)], gain_db=-3.5, mute=True))
    recipe.residual.gain_db = -12.0
    recipe.output.format = "flac"
    return recipe


def test_golden_file_is_what_save_writes(tmp_path):
    path = tmp_path / "edits" / "concert.json"
    rcp.save(golden_recipe(tmp_path), path)
    assert path.read_text() == (GOLDEN / "recipe-v1.json").read_text()


def test_golden_file_round_trips(tmp_path):
    (tmp_path / "edits").mkdir()
    path = tmp_path / "edits" / "concert.json"
    shutil.copy(GOLDEN / "recipe-v1.json", path)
    recipe = rcp.load(path)
    assert recipe.clip.path == tmp_path / "clips" / "concert.mp4"  # relative to the recipe's folder
    assert recipe == golden_recipe(tmp_path)
    assert rcp.to_dict(recipe, base=path.parent) == json.loads(path.read_text())
    again = tmp_path / "edits" / "again.json"
    rcp.save(recipe, again)
    assert again.read_bytes() == path.read_bytes()


def test_golden_files_follow_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(rcp.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for golden in sorted(GOLDEN.glob("recipe-*.json")):
        jsonschema.validate(json.loads(golden.read_text()), schema)


def bad(change):
    data = json.loads((GOLDEN / "recipe-v1.json").read_text())
    change(data)
    return data


def _set(path: str, value):
    def change(data):
        *head, last = path.split(".")
        node = data
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return change


_DELETE = object()
BAD_CASES = [
    ("version", _set("version", 2), "version 2 is newer than this pixelsep reads (1): update pixelsep", True),
    ("version0", _set("version", 0), "recipe version 0 is not one", True),
    ("format", _set("format", "otio"), "not a pixelsep recipe", True),
    ("unknown field", _set("sources.0.colour", "red"), "unknown field sources[0].colour", True),
    ("missing", _set("residual.mute", _DELETE), "residual.mute is missing", True),
    ("sha", _set("clip.sha256", "abc"), "clip.sha256 must be 64", True),
    ("escape", _set("output.folder", "../elsewhere"), "would leave the recipe's folder", False),
    ("absolute", _set("output.folder", "/tmp/stems"), "must be a folder relative to the recipe", False),
    ("slash name", _set("sources.0.name", "../../etc/x"), "is not usable", True),
    ("reserved", _set("sources.0.name", "Residual"), "is reserved", True),
    ("duplicate", _set("sources.1.name", "TRUMPET"), "two sources are named", False),
    ("gain", _set("sources.0.gain_db", 1e9), "outside [-120, 36]", True),
    ("bool gain", _set("sources.0.gain_db", True), "must be a number", True),
    ("point outside", _set("sources.0.parts.0.point", [1280, 10]), "outside the 1280x720 frame", False),
    ("time outside", _set("sources.0.parts.0.time_seconds", 13), "outside [0, 12.5]", False),
    ("empty box", _set("sources.1.parts.0.box", [100, 80, 100, 600]), "box is empty", False),
    ("no parts", _set("sources.0.parts", []), "has no part", True),
    ("too many sources", lambda d: d["sources"].extend(copy.deepcopy(d["sources"][:1]) * 70), "at most 64", True),
    ("too many parts", lambda d: d["sources"][0]["parts"].extend(d["sources"][0]["parts"] * 200), "at most 256", True),
    ("long name", _set("sources.0.name", "x" * 65), "longer than 64 characters", True),
    ("format choice", _set("output.format", "aiff"), "output.format must be one of", True),
    ("frame rate", _set("clip.video.frame_rate", "29.97"), "like 30000/1001", True),
    ("effects type", _set("residual.effects", {"plugin": "Reverb"}), "residual.effects must be a list", True),
]


@pytest.mark.parametrize("name,change,message,schema_refuses", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_recipes_get_one_line(tmp_path, name, change, message, schema_refuses):
    data = bad(change)
    with pytest.raises(InputError) as caught:
        rcp.from_dict(data, base=tmp_path)
    text = str(caught.value)
    assert message in text and "\n" not in text
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(rcp.SCHEMA_PATH.read_text())
    refused = not jsonschema.Draft202012Validator(schema).is_valid(data)
    assert refused or not schema_refuses  # the checks a schema can express, it expresses


def test_files_that_are_not_recipes(tmp_path):
    cases = {
        "nan.json": (GOLDEN / "recipe-v1.json").read_text().replace('"gain_db": 6', '"gain_db": NaN'),
        "text.json": "hello",
        "list.json": "[1, 2]",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match="not valid JSON|must be a JSON object|must be a number"):
            rcp.load(tmp_path / name)
    big = tmp_path / "big.json"
    big.write_text(" " * (rcp.document.MAX_RECIPE_BYTES + 1))
    with pytest.raises(InputError, match="larger than"):
        rcp.load(big)
    with pytest.raises(InputError, match="not found"):
        rcp.load(tmp_path / "missing.json")
    with pytest.raises(InputError, match="is a folder"):
        rcp.load(tmp_path)


def test_clip_missing_changed_and_relinked(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video, but hashed all the same")
    from pixelsep_plugin.runtime.store import sha256_of_file

    recipe = golden_recipe(tmp_path)
    recipe.clip.path = clip
    recipe.clip.sha256 = sha256_of_file(clip)
    assert rcp.check_clip(recipe).clip.path == clip
    moved = tmp_path / "moved" / "clip.mp4"
    moved.parent.mkdir()
    clip.rename(moved)
    with pytest.raises(InputError, match="is missing: if it has moved, pass --relink NEW_PATH"):
        rcp.check_clip(recipe)
    assert rcp.check_clip(recipe, relink=moved).clip.path == moved
    moved.write_bytes(b"another clip")
    with pytest.raises(InputError, match="sha256 differs.*--relink PATH.*--accept-changed-clip"):
        rcp.check_clip(recipe, relink=moved)
    assert rcp.check_clip(recipe, relink=moved, accept_changed=True).clip.path == moved
    with pytest.raises(InputError, match="no such file"):
        rcp.check_clip(recipe, relink=tmp_path / "nowhere.mp4")


def test_model_must_be_the_recipes():
    recipe = golden_recipe(Path("/tmp"))
    rcp.check_model(recipe, "pixelsep-small", MODEL_SHA)
    with pytest.raises(InputError, match="give that model with --model, or pass --accept-other-model"):
        rcp.check_model(recipe, "other", SHA)
    rcp.check_model(recipe, "other", SHA, accept_other=True)


def test_gains_mutes_and_solos():
    recipe = golden_recipe(Path("/tmp"))
    gains, rest = rcp.linear_gains(recipe)
    assert gains == [pytest.approx(10 ** (6 / 20)), 0.0] and rest == pytest.approx(10 ** (-12 / 20))
    recipe.sources[1].mute = False
    recipe.sources[1].solo = True
    gains, rest = rcp.linear_gains(recipe)
    assert gains == [0.0, pytest.approx(10 ** (-3.5 / 20))] and rest == 0.0
    recipe.sources[1].solo = False
    recipe.sources[0].gain_db = 0.0
    recipe.residual.gain_db = 0.0
    recipe.sources[1].gain_db = 0.0
    assert rcp.linear_gains(recipe) == ([1.0, 1.0], 1.0)  # exactly: an untouched recipe is the original


def test_gain_arguments():
    recipe = golden_recipe(Path("/tmp"))
    assert rcp.parse_gain("trumpet=+6") == ("trumpet", 6.0)
    assert rcp.parse_gain("residual=-12dB") == ("residual", -12.0)
    changed = rcp.apply_gains(recipe, [("trumpet", -1.5), ("residual", -math.inf)])
    assert changed.source("trumpet").gain_db == -1.5 and changed.residual.mute
    assert recipe.source("trumpet").gain_db == 6.0  # the original recipe is not changed
    for text in ("trumpet", "=3", "x=loud", "x=nan", "x=inf"):
        with pytest.raises(InputError, match="write it like trumpet=\\+6"):
            rcp.parse_gain(text)
    with pytest.raises(InputError, match="no source named 'violin'.*trumpet, tuba, residual"):
        rcp.apply_gains(recipe, [("violin", 3.0)])
    with pytest.raises(InputError, match="outside"):
        rcp.apply_gains(recipe, [("tuba", 100.0)])


def test_save_refuses_the_clip_and_non_json(tmp_path):
    recipe = golden_recipe(tmp_path)
    with pytest.raises(InputError, match=".json"):
        rcp.save(recipe, tmp_path / "edit.txt")
    recipe.clip.path = tmp_path / "clip.json"
    recipe.clip.path.write_text("{}")
    with pytest.raises(InputError, match="never changes"):
        rcp.save(recipe, recipe.clip.path)
    assert recipe.clip.path.read_text() == "{}"


def test_output_folder_stays_under_the_recipe(tmp_path):
    recipe = golden_recipe(tmp_path)
    assert rcp.output_folder(recipe, tmp_path / "edits" / "e.json") == tmp_path / "edits" / "stems"
    recipe.output.folder = "a/../../b"
    with pytest.raises(InputError, match="would leave"):
        rcp.output_folder(recipe, tmp_path / "e.json")
