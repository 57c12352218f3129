#!/usr/bin/env bash
# Builds the agent's base image (Debian bookworm's own python3.11 and journalctl) without
# pulling from a registry: the .debs of python3 and its runtime dependencies come from the
# Debian archive via `apt-get download`, are unpacked with `dpkg -x` into a root filesystem
# and `docker import`ed. No maintainer scripts run, so debconf, perl and dpkg stay out and
# the image is ~72 MB (6 of them journalctl's libraries). A host that can pull images may use any Debian-based Python 3.11
# image instead: `docker build --build-arg BASE=python:3.11-slim-bookworm .`
#
# Usage: build-base-image.sh [IMAGE]   (default nexo-agent-base:local; FORCE=1 rebuilds)
# Needs: root, apt-get on a Debian bookworm host (same suite as the image), docker.
set -euo pipefail

image=${1:-nexo-agent-base:local}
# Bumped when the image's content changes: an older base image is rebuilt, not reused.
base_version=2
if [ "${FORCE:-0}" != 1 ] && [ "$(docker image inspect -f '{{ index .Config.Labels "nexo.base.version" }}' "$image" 2>/dev/null)" = "$base_version" ]; then
  echo "base image $image present (FORCE=1 rebuilds)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-base-image.sh: run as root (chroot, file ownership)" >&2; exit 1; }

# What the agent needs at run time; apt resolves the rest. libsystemd-shared: what
# journalctl (logs.journal) links against; journalctl itself is taken from systemd below.
roots=(python3 python3-venv dash ca-certificates openssl libsystemd-shared)
# Only needed by maintainer scripts or interactive use, never by the agent.
unwanted='^(debconf|cdebconf|libdebian-installer4|libnewt0.52|libslang2|libtextwrap1|perl|perl-base|perl-modules-.*|libperl.*|libgdbm-compat4|dpkg|install-info|tar|mailcap|mime-support|debianutils|readline-common)$'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/rootfs"

# apt-cache answers from the package lists; fetch them once on a fresh machine.
if ! apt-cache show python3.11-minimal >/dev/null 2>&1; then
  apt-get update -qq
fi
mapfile -t pkgs < <(
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${roots[@]}" |
    grep -v '^ ' | grep -v '^<' | sort -u | grep -Ev "$unwanted"
)
# _apt cannot write to a mktemp directory; the download is still verified by apt.
(cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root "${pkgs[@]}")
for deb in "$work"/debs/*.deb; do
  dpkg -x "$deb" "$work/rootfs"
done

root=$work/rootfs
# journalctl alone from Debian's systemd package (76 KB; the rest of systemd stays out).
mkdir -p "$work/systemd"
(cd "$work/systemd" && apt-get download -qq -o APT::Sandbox::User=root systemd)
dpkg -x "$work"/systemd/systemd_*.deb "$work/systemd/x"
install -m 0755 "$work/systemd/x/bin/journalctl" "$root/usr/bin/journalctl"
rm -f "$root"/usr/lib/*/systemd/libsystemd-core-*.so
mkdir -p "$root"/{tmp,proc,sys,dev,run,etc,var/lib/nexo-agent,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nexo:x:10001:10001:nexo-agent:/var/lib/nexo-agent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nexo:x:10001:
nogroup:x:65534:
GROUP
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
# update-ca-certificates would do this from its postinst: one bundle of every Mozilla root.
mkdir -p "$root/etc/ssl/certs"
cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
chown 10001:10001 "$root/var/lib/nexo-agent"
ldconfig -r "$root"
# The stdlib's bytecode, which python3's postinst would have compiled: a read-only root
# filesystem would otherwise recompile every module at each start.
chroot "$root" /usr/bin/python3.11 -m compileall -qq /usr/lib/python3.11 || true
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian}

tar --numeric-owner -C "$root" -c . |
  docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/usr/bin/python3"]' \
    -c "LABEL nexo.base.version=$base_version" \
    -m "bookworm python3 from ${#pkgs[@]} Debian packages" - "$image" >/dev/null
echo "built $image from ${#pkgs[@]} Debian packages"
