#!/bin/sh
# The debian:12 base image, offline when the registry is out of reach: a
# `debootstrap --variant=minbase bookworm` tree from the Debian mirror this
# machine's apt uses, imported with `docker import`. Does nothing when the
# image is already there or can be pulled.
# usage: docker-base.sh [TAG]   (default debian:12; needs root and debootstrap)
set -eu
tag=${1:-debian:12}
if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "docker-base: $tag present"
    exit 0
fi
if timeout 60 docker pull -q "$tag" >/dev/null 2>&1; then
    echo "docker-base: pulled $tag"
    exit 0
fi
# The mirror apt uses here (deb822 .sources or one-line sources.list).
mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb  *\(http[^ ]*\)  *bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
command -v debootstrap >/dev/null 2>&1 || { echo "docker-base: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
root=$(mktemp -d "${TMPDIR:-/tmp}/hestat-base.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM
echo "docker-base: $tag cannot be pulled; debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "docker-base: imported $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
