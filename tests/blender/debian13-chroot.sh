#!/usr/bin/env bash
# A Blender with a window on a Debian 12 machine, whose own Blender (3.4) predates extensions:
# a Debian 13 chroot with Debian's Blender 4.3.2 (Python 3.13), Xvfb, xdotool and ImageMagick, and
# this repository bind-mounted at the same path. Then tests/blender/windowed.sh runs in it.
#
#   sudo tests/blender/debian13-chroot.sh CHROOT_DIR EXTENSION.zip OUT_DIR      (make blender-window-chroot)
#
# Needs root (debootstrap, mount, chroot) and Debian's mirror; about 1.5 GB in CHROOT_DIR. A second
# run reuses the chroot.
set -euo pipefail
root="$(realpath -m "$1")"
zip="$(realpath "$2")"
out="$(realpath -m "$3")"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
command -v debootstrap >/dev/null || apt-get install -y debootstrap
if [ ! -x "$root/usr/bin/blender" ]; then
    debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    chroot "$root" apt-get update -q
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        blender python3-numpy fonts-dejavu xvfb xauth xdotool imagemagick libgl1-mesa-dri
fi
mounts=()
bind() {  # the host's $1 at the same path inside the chroot ($2: --rbind to take its submounts too)
    mkdir -p "$root$1"
    if ! mountpoint -q "$root$1"; then mount "${2:---bind}" "$1" "$root$1"; mounts+=("$root$1"); fi
}
trap 'for ((i=${#mounts[@]}-1; i>=0; i--)); do umount -lR "${mounts[i]}"; done' EXIT
mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounts+=("$root/proc"); }
bind /dev --rbind
bind /sys --rbind
bind "$repo"
case "$zip" in "$repo"/*) ;; *) bind "$(dirname "$zip")" ;; esac
mkdir -p "$out"
case "$out" in "$repo"/*) ;; *) bind "$out" ;; esac
status=0
chroot "$root" "$repo/tests/blender/windowed.sh" "$zip" "$out" || status=$?
exit $status
