#!/usr/bin/env bash
# Checks that every component of the stack answers its health endpoint, and that
# Prometheus reaches every nexo-agent it scrapes. Prints one line per check; exits 1 if
# any failed.
#
# Usage: healthcheck.sh [COMPONENT...]   (default: all of them)
#   components: prometheus alertmanager loki grafana agent agents
# Environment (defaults: the ports the compose file publishes on 127.0.0.1):
#   PROMETHEUS_ADDR ALERTMANAGER_ADDR LOKI_ADDR GRAFANA_ADDR AGENT_ADDR
set -uo pipefail
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "$0")/lib.sh"

prometheus=${PROMETHEUS_ADDR:-http://127.0.0.1:9090}
alertmanager=${ALERTMANAGER_ADDR:-http://127.0.0.1:9093}
loki=${LOKI_ADDR:-http://127.0.0.1:3100}
grafana=${GRAFANA_ADDR:-http://127.0.0.1:3000}
agent=${AGENT_ADDR:-http://127.0.0.1:9101}

failed=0
report() { # status component detail
  printf '%-4s %-12s %s\n' "$1" "$2" "$3"
  [ "$1" = ok ] || failed=1
}
check_url() { # component url
  if http -o /dev/null "$2"; then report ok "$1" "$2"; else report FAIL "$1" "$2"; fi
}
check_agents() {
  # Every nexo-agent target, as Prometheus last scraped it.
  local body up total
  if ! body=$(http --get "$prometheus/api/v1/query" --data-urlencode 'query=up{job="nexo-agent"}'); then
    report FAIL agents "$prometheus/api/v1/query"
    return
  fi
  total=$(grep -o '"value":\[[^]]*\]' <<<"$body" | wc -l)
  up=$(grep -o '"value":\[[^]]*,"1"\]' <<<"$body" | wc -l)
  if [ "$total" -gt 0 ] && [ "$up" -eq "$total" ]; then
    report ok agents "$up/$total up"
  else
    report FAIL agents "$up/$total up"
  fi
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(prometheus alertmanager loki grafana agent agents)
for component in "${components[@]}"; do
  case $component in
    prometheus) check_url prometheus "$prometheus/-/ready" ;;
    alertmanager) check_url alertmanager "$alertmanager/-/ready" ;;
    loki) check_url loki "$loki/ready" ;;
    grafana) check_url grafana "$grafana/api/health" ;;
    agent) check_url agent "$agent/healthz" && check_url agent "$agent/ready" ;;
    agents) check_agents ;;
    *) report FAIL "$component" "unknown component" ;;
  esac
done
exit "$failed"
