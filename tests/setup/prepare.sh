#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine (run as root):
# dockerd (vfs storage, no iptables, no bridge), node_exporter, prometheus/promtool and a
# busybox image built locally with `docker import` (images cannot be pulled here).
# Idempotent: a second run only checks that everything is up.
set -euo pipefail

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v prometheus-node-exporter >/dev/null || need_pkgs+=(prometheus-node-exporter)
command -v promtool >/dev/null || need_pkgs+=(prometheus)
command -v ip >/dev/null || need_pkgs+=(iproute2)
# tests/deploy: amtool, docker-compose config, systemd-analyze verify, shellcheck, curl
# (healthcheck.sh, backup.sh); the image's base comes from `apt-get download`.
command -v amtool >/dev/null || need_pkgs+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || need_pkgs+=(docker-compose)
command -v systemd-analyze >/dev/null || need_pkgs+=(systemd)
# tests/logs/test_journal.py: journalctl reads journal files systemd-journal-remote writes.
command -v journalctl >/dev/null || need_pkgs+=(systemd)
[ -x /lib/systemd/systemd-journal-remote ] || need_pkgs+=(systemd-journal-remote)
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)
command -v curl >/dev/null || need_pkgs+=(curl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "prepare: installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# Tests start their own prometheus and node_exporter on free loopback ports, so a
# packaged service that an init system may have started does not get in the way.

if ! docker info >/dev/null 2>&1; then
  echo "prepare: starting dockerd"
  mkdir -p /var/log
  nohup dockerd --storage-driver vfs --iptables=false --bridge=none \
    >/var/log/nexo-test-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "prepare: dockerd did not start"; tail -20 /var/log/nexo-test-dockerd.log; exit 1; }
fi

if ! docker image inspect nexo-test/busybox:latest >/dev/null 2>&1; then
  echo "prepare: building nexo-test/busybox from busybox-static"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh echo cat sleep yes head seq printf dd awk sed true false ls wc tr; do
    ln -s busybox "$root/bin/$applet"
  done
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' - nexo-test/busybox:latest >/dev/null
  rm -rf "$root"
fi
echo "prepare: ready"
