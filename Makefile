# pixelsep: `make demo` sets everything up and separates the example clip; `make test` runs the tests.
# Both work on a fresh Debian/Ubuntu machine with Python 3.11; system packages are installed as needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_CLIP := examples/duet.mp4
DEMO_OUT := demo-out
UNTRAINED := models/small-untrained

.PHONY: demo test setup system-deps model clean-venv bench blender-env infer-env extension blender-window blender-window-chroot

# Debian packages: python3-venv for the virtual environment; for the synthetic performance
# generator (training data, tests): SoundFonts, real recorded notes and loops, the emoji font, and
# npm for the picture packages, cairo to draw them. (sonic-pi-samples and timgm6mb-soundfont are the held-out sounds.)
# melt (MLT) and ges-launch-1.0 (GStreamer Editing Services, with the plugins that decode mp4/H.264/AAC and
# write WAV) render the editing timelines in the timeline tests. zam-plugins: VST3 plugins (ZamCompX2,
# ZaMaximX2) that the effect-chain tests load by path. The previewer (PyQt6): libpulse0 for QtMultimedia's sound,
# EGL/xkbcommon/xcb/fontconfig libraries and a font for its window (offscreen in the tests), and Xvfb, xdotool
# and ImageMagick for its windowed check with a real mouse and keyboard.
SYSTEM_PACKAGES := python3-venv fluid-soundfont-gm musescore-general-soundfont opl3-soundfont avldrums.lv2-soundfont \
	lmms-common timgm6mb-soundfont sonic-pi-samples fonts-noto-color-emoji npm libcairo2 \
	melt ges1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav \
	zam-plugins \
	libpulse0 libegl1 libgl1 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 \
	libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 fonts-dejavu-core xvfb xdotool imagemagick
SYSTEM_FILES := /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/share/sounds/sf3/MuseScore_General.sf3 \
	/usr/share/sounds/sf2/OPL-3_FM_128M.sf2 /usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2 /usr/share/lmms/samples \
	/usr/share/sounds/sf2/TimGM6mb.sf2 /usr/share/sonic-pi/samples /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf /usr/bin/npm \
	/usr/bin/melt /usr/bin/ges-launch-1.0 /usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstlibav.so \
	/usr/lib/vst3/ZamCompX2.vst3 \
	/usr/lib/x86_64-linux-gnu/libpulse.so.0 /usr/lib/x86_64-linux-gnu/libEGL.so.1 /usr/lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 \
	/usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0 /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf /usr/bin/Xvfb /usr/bin/xdotool /usr/bin/import
system-deps:
	@missing=0; for f in $(SYSTEM_FILES); do [ -e $$f ] || missing=1; done; \
	$(PYTHON) -c "import ctypes.util, sys; sys.exit(ctypes.util.find_library('cairo') is None)" || missing=1; \
	if ! $(PYTHON) -c "import ensurepip, venv" >/dev/null 2>&1 || [ $$missing = 1 ]; then \
		$(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES); fi

# Picture styles from npm (pinned), installed into .npm/node_modules (pixelsep_plugin/synth/pictures.py).
# @iconify-json/emojione is the held-out picture style.
NPM_PACKAGES := @iconify-json/twemoji@1.2.5 @iconify-json/fluent-emoji@1.2.7 @iconify-json/fluent-emoji-flat@1.2.6 \
	@iconify-json/fxemoji@1.2.2 @iconify-json/game-icons@1.2.4 @iconify-json/emojione@1.2.3 @lobehub/fluent-emoji-3d@1.1.0
.npm/.installed: Makefile | system-deps
	mkdir -p .npm && npm install --silent --no-audit --no-fund --prefix .npm $(NPM_PACKAGES)
	touch $@

$(BIN)/python: | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python system-deps
	$(BIN)/python -m pip install --quiet -e ".[train,eval,dev,timeline,cleanup,swap,effects,cluster,app]"
	$(BIN)/python -m pip install --quiet --no-deps "tinysoundfont==0.3.7"
	$(BIN)/python -m pip install --quiet --no-deps "basic-pitch==0.4.0"
	touch $@

setup: $(VENV)/.installed .npm/.installed

# The shipped model (models/pixelsep-small) is in the repository. `make model` also builds the
# untrained `small` nets (seeded random weights, never downloaded) as models/small-untrained.
$(UNTRAINED)/manifest.json: | $(VENV)/.installed
	$(BIN)/python -m pixelsep_plugin.export.build_untrained --config small --out $(UNTRAINED)

model: $(UNTRAINED)/manifest.json

# The example duet (held-out seed and melody): click the long drum and the accordion at 5 s, write
# their stems and the heatmap, then score the same clicks against the clip's true stems (--force: a
# second `make demo` replaces the first one's files).
demo: setup
	$(BIN)/pixelsep info
	$(BIN)/pixelsep separate $(DEMO_CLIP) --at 136,88@5 --name long-drum --at 365,186@5 --name accordion -o $(DEMO_OUT) --recipe duet.json --force
	$(BIN)/pixelsep heatmap $(DEMO_CLIP) --at 5 -o $(DEMO_OUT)/heatmap.png --force
	$(BIN)/pixelsep render $(DEMO_OUT)/duet.json --gain long-drum=-6 --gain accordion=+3 --no-stems --video $(DEMO_OUT)/duet-remix.mp4 --force -q
	$(BIN)/pixelsep timeline $(DEMO_OUT)/duet.json -o $(DEMO_OUT)/duet.otio --force -q
	$(BIN)/pixelsep eval pixelsep-small $(DEMO_CLIP) -o $(DEMO_OUT)/scores -q
	@echo "demo outputs are in $(DEMO_OUT)/: duet.long-drum.wav, duet.accordion.wav, duet.residual.wav, duet.json (the recipe), duet.remix.wav, duet-remix.mp4, duet.otio, heatmap.png, scores.md"

# Real Blenders for the extension's tests: the bpy modules of Blender 5.0.1, 4.5 and 4.3 (Python
# 3.11; 4.3 still has `sequences` where 4.4+ have `strips`), each in its own environment with
# numpy < 2, like Blender's bundled Python.
BLENDER_VENV := .venv-blender
BLENDER45_VENV := .venv-blender-4.5
BLENDER43_VENV := .venv-blender-4.3
$(BLENDER_VENV)/.installed:
	$(PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/python -m pip install --quiet "bpy==5.0.1" "numpy<2"
	touch $@

$(BLENDER45_VENV)/.installed:
	$(PYTHON) -m venv $(BLENDER45_VENV)
	$(BLENDER45_VENV)/bin/python -m pip install --quiet "bpy==4.5.15" "numpy<2"
	touch $@

$(BLENDER43_VENV)/.installed:
	$(PYTHON) -m venv $(BLENDER43_VENV)
	$(BLENDER43_VENV)/bin/python -m pip install --quiet "bpy==4.3.0" "numpy<2"
	touch $@

blender-env: $(BLENDER_VENV)/.installed $(BLENDER45_VENV)/.installed $(BLENDER43_VENV)/.installed

# The inference path as a user without torch runs it: numpy 1.26 (as Blender bundles), ONNX Runtime and
# PyAV only (no torch, no scipy), for tests/test_no_torch.py with the committed tests/data/tiny-model.
INFER_VENV := .venv-infer
$(INFER_VENV)/.installed: Makefile | system-deps
	rm -rf $(INFER_VENV)
	$(PYTHON) -m venv $(INFER_VENV)
	$(INFER_VENV)/bin/python -m pip install --quiet "numpy==1.26.4" "onnxruntime==1.32.0" "av==18.1.0"
	touch $@

infer-env: $(INFER_VENV)/.installed

# The Blender extension zip (dist/pixelsep_vse-<version>-<platform>.zip); PLATFORMS="linux-x64 windows-x64 macos-arm64"
PLATFORMS ?= linux-x64
extension: setup
	$(BIN)/python installers/build_blender_extension.py $(foreach p,$(PLATFORMS),--platform $(p))

# The extension in a Blender with a window on a virtual display (Xvfb, xdotool, ImageMagick): the
# modal Analyze and Pick tools with real mouse clicks, the heatmap overlay, Undo, and the screenshots
# in docs/images. BLENDER=/path/to/blender (4.2+, Linux); on Debian 12, whose Blender is 3.4, the
# chroot target builds a Debian 13 chroot with its Blender 4.3 (root, ~1.5 GB). Not part of `make test`.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
EXTENSION_ZIP := dist/pixelsep_vse-$(VERSION)-linux-x64.zip
BLENDER_CHROOT ?= /var/tmp/pixelsep-debian13
blender-window: extension
	tests/blender/windowed.sh $(EXTENSION_ZIP) build/blender-window

blender-window-chroot: extension
	$(SUDO) tests/blender/debian13-chroot.sh $(BLENDER_CHROOT) $(EXTENSION_ZIP) build/blender-window

test: setup blender-env infer-env
	$(BIN)/python -m pytest -q

bench: setup model
	$(BIN)/python benchmarks/speed.py --model small-untrained --repeat 5 --out benchmarks/results/speed.json

clean-venv:
	rm -rf $(VENV) $(BLENDER_VENV) $(BLENDER45_VENV) $(BLENDER43_VENV) $(INFER_VENV)
