"""Build the Blender extension zip: the add-on, pixelsep as a wheel (with its default model), its dependencies' wheels.

    python installers/build_blender_extension.py                       # linux-x64 -> dist/
    python installers/build_blender_extension.py --platform windows-x64 --platform macos-arm64

One zip per platform, ``dist/pixelsep_vse-<version>-<platform>.zip``, installable with Edit >
Preferences > Get Extensions > Install from Disk. Inside: the add-on
(``host_bridge/blender/addon``), ``blender_manifest.toml``, ``wheels/`` (pixelsep itself, ONNX
Runtime, PyAV and their dependencies for that platform; numpy is Blender's own); the pixelsep wheel
carries the default model ``pixelsep-small``. The compiled wheels are there for each ``--python`` version (default
3.11, the Python of Blender 4.2 to 5.0 from blender.org, and 3.13, the Python of Blender 5.1 and of
Blenders that Linux distributions build against their own Python); Blender installs the ones that
match its Python. Wheels are fetched with ``pip download`` (PyPI or the configured index) into
``--wheel-cache`` once; nothing is fetched when Blender installs or runs the extension.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTENSION_ID = "pixelsep_vse"
# pip platform tags per Blender platform
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_11_0_arm64", "macosx_12_0_arm64", "macosx_13_0_arm64", "macosx_14_0_arm64"],
}
# What the engine's inference path needs besides numpy, with their own dependencies; OpenTimelineIO
# with its adapters for the panel's Export Timeline; pedalboard for the stems' effect chains.
REQUIREMENTS = ["onnxruntime", "av", "flatbuffers", "packaging", "protobuf",
                "opentimelineio", "otio-fcp-adapter", "otio-fcpx-xml-adapter", "otio-xges-adapter", "pedalboard"]  # fmt: skip
PYTHON_VERSIONS = ("3.11", "3.13")


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def download_wheels(platform: str, python: str, cache: Path) -> list[Path]:
    """The dependency wheels for ``platform`` and ``python`` (one per requirement), downloaded once into ``cache``."""
    folder = cache / platform / f"py{python}"
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp", "--dest", str(folder)]  # fmt: skip
    for tag in PLATFORMS[platform]:
        command += ["--platform", tag]
    subprocess.run(command + REQUIREMENTS, check=True)
    wheels = sorted(folder.glob("*.whl"))
    for requirement in REQUIREMENTS:
        found = [w for w in wheels if w.name.split("-")[0].lower() == requirement.replace("-", "_").lower()]
        if len(found) != 1:
            raise SystemExit(
                f"{platform}, Python {python}: expected one {requirement} wheel in {folder}, found {len(found)}"
            )
    return wheels


def serves(wheel: str, python: str) -> bool:
    """Whether the wheel file named ``wheel`` runs on CPython ``python`` ("3.13")."""
    python_tag, abi_tag = wheel[:-4].split("-")[-3:-1]
    wanted = "cp" + python.replace(".", "")
    if abi_tag == "none":
        return True
    if abi_tag == "abi3":  # the stable ABI: built for one Python, runs on every later one
        return any(int(tag[2:]) <= int(wanted[2:]) for tag in python_tag.split(".") if tag.startswith("cp"))
    return wanted in python_tag.split(".")


def select_wheels(platform: str, pythons: tuple[str, ...], cache: Path) -> list[Path]:
    """One wheel per requirement and Python; a pure or stable-ABI wheel already taken serves later Pythons too."""
    chosen: list[Path] = []
    for python in sorted(pythons, key=lambda v: tuple(map(int, v.split(".")))):
        for wheel in download_wheels(platform, python, cache):
            name = wheel.name.split("-")[0].lower()
            if not any(c.name.split("-")[0].lower() == name and serves(c.name, python) for c in chosen):
                chosen.append(wheel)
    return chosen


def build_pixelsep_wheel(out: Path) -> Path:
    """pixelsep's wheel, built from a copy of the files a clone has (no build/ leftovers, no local models)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")  # fmt: skip
    tree = out / "tree"
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(tree)], check=True)  # fmt: skip
    return next(out.glob("pixelsep-*.whl"))


def manifest(version: str, platform: str, wheels: list[str]) -> str:
    listed = ",\n".join(f'  "./wheels/{name}"' for name in wheels)
    return f'''schema_version = "1.0.0"
id = "{EXTENSION_ID}"
version = "{version}"
name = "PixelSep"
tagline = "Click a performer in the sequencer preview to get their sound as a strip"
maintainer = "pixelsep developers"
type = "add-on"
website = "https://github.com/pixelsep/pixelsep"
tags = ["Sequencer", "Audio"]
blender_version_min = "4.2.0"
license = ["SPDX:GPL-3.0-or-later"]
platforms = ["{platform}"]
wheels = [
{listed}
]

[permissions]
files = "Reads the movie and writes the separated stems next to the .blend file"
'''


def build(platform: str, out_dir: Path, cache: Path, pythons: tuple[str, ...] = PYTHON_VERSIONS) -> Path:
    version = project_version()
    with tempfile.TemporaryDirectory(prefix="pixelsep-ext-") as temp:
        stage = Path(temp) / EXTENSION_ID
        shutil.copytree(REPO / "host_bridge" / "blender" / "addon", stage, ignore=shutil.ignore_patterns("__pycache__"))
        wheels_dir = stage / "wheels"
        wheels_dir.mkdir()
        own = build_pixelsep_wheel(Path(temp) / "own")
        shutil.copy(own, wheels_dir)
        for wheel in select_wheels(platform, pythons, cache):
            shutil.copy(wheel, wheels_dir)
        names = sorted(p.name for p in wheels_dir.iterdir())
        (stage / "blender_manifest.toml").write_text(manifest(version, platform, names))
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{EXTENSION_ID}-{version}-{platform}.zip"
        partial = target.with_suffix(".zip.part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(stage.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(stage).as_posix())
        partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS), help="default: linux-x64")
    parser.add_argument(
        "--python",
        action="append",
        metavar="X.Y",
        help=f"Python versions to carry compiled wheels for; default: {' '.join(PYTHON_VERSIONS)}",
    )
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--wheel-cache", type=Path, default=REPO / "build" / "extension-wheels")
    args = parser.parse_args(argv)
    for platform in args.platform or ["linux-x64"]:
        path = build(platform, args.out, args.wheel_cache, tuple(args.python or PYTHON_VERSIONS))
        print(f"{platform}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
