#!/usr/bin/env bash
# The extension in a Blender with a window, on a virtual X display: modal Analyze and Pick with real
# mouse clicks, the heatmap overlay, Undo, and the screenshots in docs/images.
#
#   tests/blender/windowed.sh EXTENSION.zip OUT_DIR      (BLENDER=path/to/blender, default: blender)
#
# Needs a Blender 4.2+ with a window (not the bpy module), Xvfb, xdotool and ImageMagick's `import`.
# Exits with the driver's status: 0 when every check in OUT_DIR/report.json passed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
zip="$(realpath "$1")"
out="$(realpath -m "$2")"
blender="${BLENDER:-blender}"
mkdir -p "$out"
home="$(mktemp -d)"  # a user's fresh Blender configuration, where the extension gets installed
display=":$((90 + RANDOM % 100))"
Xvfb "$display" -screen 0 1600x900x24 -nolisten tcp >"$out/xvfb.log" 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null; rm -rf "$home"' EXIT
sleep 2
status=0
HOME="$home" DISPLAY="$display" timeout 600 "$blender" --factory-startup --app-template Video_Editing \
    --window-geometry 0 0 1600 900 ${BLENDER_ARGS:-} --python "$here/windowed.py" -- \
    "$zip" "$(realpath "$here/../../examples/duet.mp4")" "$out" >"$out/blender.log" 2>&1 || status=$?
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); [print(("ok  " if c["ok"] else "FAIL"), k, "" if c["ok"] else c["detail"]) for k, c in r["checks"].items()]; print(r.get("error", ""))' "$out/report.json" || tail -20 "$out/blender.log"
exit $status
