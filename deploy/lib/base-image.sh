#!/usr/bin/env bash
# Ensures the image named $1 (default debian:bookworm-slim, the BASE_IMAGE of the
# Dockerfiles) exists locally. Without a registry nothing can be pulled, so a
# missing image is built from `debootstrap --variant=minbase bookworm` and
# `docker import`ed under that name. An existing image (pulled, or imported by an
# earlier run) is kept: the tag is the cache. ~40 s for debootstrap on a 2-core
# machine with a near mirror, 3 s for the import.
set -euo pipefail
IMAGE=${1:-debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if timeout 120 docker pull -q "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image: debootstrap missing" >&2; exit 1; }
root=$(mktemp -d /tmp/wsload-rootfs.XXXXXX)
# An interrupted debootstrap leaves proc/sys mounted inside the target: unmount
# before removing, and never let rm cross into another file system.
cleanup() {
  { grep -o " $root/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$root" "$root.log" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "base-image: debootstrap bookworm into $root (no registry: building $IMAGE locally)"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; exit 1; }
# Smaller and closer to the official slim image: no apt lists, docs or man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'LABEL org.wsload.origin=debootstrap' \
  - "$IMAGE" >/dev/null
echo "base-image: $IMAGE imported"
