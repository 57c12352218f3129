#!/usr/bin/env bash
# Starts the observability stack (deploy/docker-compose.observability.yml) after creating
# what it mounts: data directories owned by each image's user, and the secret files
# Alertmanager and Grafana read. A secret is written from its environment variable when
# set, kept when already there, and otherwise left empty (that receiver then fails to
# send) - except Grafana's admin password, generated once and printed.
#
# Usage: start.sh [--no-up] [SERVICE...]   (--no-up: prepare only)
# Environment: SLACK_WEBHOOK_URL, SMTP_PASSWORD, PAGERDUTY_ROUTING_KEY, HEARTBEAT_TOKEN,
# GRAFANA_ADMIN_PASSWORD, NEXO_HOSTNAME (default: this host's name), the image variables
# of the compose file (NEXO_AGENT_IMAGE, LOKI_IMAGE, ...).
set -euo pipefail
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "$0")/lib.sh"

up=1
if [ "${1:-}" = "--no-up" ]; then
  up=0
  shift
fi

# uid:gid each image runs as (user: in the compose file).
declare -A owners=(
  [loki]=10001:10001
  [prometheus]=65534:65534
  [alertmanager]=65534:65534
  [grafana]=472:472
  [nexo-agent]=0:0
)
for dir in "${!owners[@]}"; do
  mkdir -p "$DEPLOY_DIR/data/$dir"
  chown "${owners[$dir]}" "$DEPLOY_DIR/data/$dir"
done

secrets=$DEPLOY_DIR/secrets
mkdir -p "$secrets"
chmod 0700 "$secrets"
write_secret() { # name value
  local file=$secrets/$1
  if [ -n "$2" ]; then
    printf '%s' "$2" >"$file"
  elif [ ! -e "$file" ]; then
    : >"$file"
    echo "start.sh: $1 is empty: set it in secrets/$1 or the environment" >&2
  fi
  # Read by the containers' own users through the bind mount; the directory is 0700.
  chmod 0644 "$file"
}
write_secret slack_webhook_url "${SLACK_WEBHOOK_URL:-}"
write_secret smtp_password "${SMTP_PASSWORD:-}"
write_secret pagerduty_routing_key "${PAGERDUTY_ROUTING_KEY:-}"
write_secret heartbeat_token "${HEARTBEAT_TOKEN:-}"
if [ -z "${GRAFANA_ADMIN_PASSWORD:-}" ] && [ ! -s "$secrets/grafana_admin_password" ]; then
  GRAFANA_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  echo "start.sh: Grafana admin password generated: $GRAFANA_ADMIN_PASSWORD"
fi
write_secret grafana_admin_password "${GRAFANA_ADMIN_PASSWORD:-}"

if [ "$up" = 1 ]; then
  NEXO_HOSTNAME=${NEXO_HOSTNAME:-$(hostname)} compose up -d "$@"
fi
