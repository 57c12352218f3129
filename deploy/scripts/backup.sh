#!/usr/bin/env bash
# Backs up the stack's data into BACKUP_DIR/<UTC timestamp>/:
#   prometheus.tar.gz    a TSDB snapshot (POST /api/v1/admin/tsdb/snapshot; Prometheus
#                        runs with --web.enable-admin-api), consistent while it runs
#   loki.tar.gz          chunks, TSDB index and compactor state; the ingester's WAL may be
#                        mid-write, which only affects the last minutes (stop Loki first
#                        for an exact copy)
#   grafana.tar.gz       dashboards, users, settings: grafana.db copied with SQLite's
#                        online backup, the rest as is
#   alertmanager.tar.gz  silences and the notification log
# Restore: stop the stack, unpack each archive into deploy/data/<name>/ (Prometheus: the
# snapshot's blocks), start it.
#
# Environment: BACKUP_DIR (default deploy/backups), PROMETHEUS_ADDR
# (default http://127.0.0.1:9090), PROMETHEUS_DATA, LOKI_DATA, GRAFANA_DATA,
# ALERTMANAGER_DATA (defaults deploy/data/<name>).
set -euo pipefail
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "$0")/lib.sh"

prometheus=${PROMETHEUS_ADDR:-http://127.0.0.1:9090}
prometheus_data=${PROMETHEUS_DATA:-$DEPLOY_DIR/data/prometheus}
loki_data=${LOKI_DATA:-$DEPLOY_DIR/data/loki}
grafana_data=${GRAFANA_DATA:-$DEPLOY_DIR/data/grafana}
alertmanager_data=${ALERTMANAGER_DATA:-$DEPLOY_DIR/data/alertmanager}
target=${BACKUP_DIR:-$DEPLOY_DIR/backups}/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$target"

# Prometheus: the snapshot is hard links inside its data directory; archive, then remove.
response=$(http -X POST "$prometheus/api/v1/admin/tsdb/snapshot")
snapshot=$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' <<<"$response")
[ -n "$snapshot" ] || { echo "backup.sh: no snapshot in: $response" >&2; exit 1; }
tar -C "$prometheus_data/snapshots" -czf "$target/prometheus.tar.gz" "$snapshot"
rm -rf "${prometheus_data:?}/snapshots/$snapshot"
echo "prometheus   $target/prometheus.tar.gz (snapshot $snapshot)"

# A live directory: files may change while read (tar exits 1 then); anything worse fails.
archive_live() { # name dir [tar options...]
  local name=$1 dir=$2 status=0
  shift 2
  tar -C "$dir" --warning=no-file-changed "$@" -czf "$target/$name.tar.gz" . || status=$?
  [ "$status" -le 1 ] || { echo "backup.sh: tar of $dir failed ($status)" >&2; exit 1; }
  echo "$(printf '%-12s' "$name") $target/$name.tar.gz"
}
archive_live loki "$loki_data"

if [ -f "$grafana_data/grafana.db" ]; then
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT
  python3 - "$grafana_data/grafana.db" "$staging/grafana.db" <<'PY'
import sqlite3, sys
source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
with sqlite3.connect(sys.argv[2]) as copy:
    source.backup(copy)
PY
  archive_live grafana "$grafana_data" --exclude=./grafana.db
  # Add the consistent copy of the database to the archive.
  gunzip "$target/grafana.tar.gz"
  tar -C "$staging" -rf "$target/grafana.tar" ./grafana.db
  gzip "$target/grafana.tar"
else
  archive_live grafana "$grafana_data"
fi
archive_live alertmanager "$alertmanager_data"
echo "backup in $target"
