# Shared by the stack scripts (sourced, not run): paths and the compose command.
# shellcheck shell=bash

# deploy/ (the compose files' directory): every relative path of the stack is under it.
DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_FILE=$DEPLOY_DIR/docker-compose.observability.yml

# Compose v2 (`docker compose`) when present, else Debian's docker-compose v1, which
# applies deploy.resources.limits only in --compatibility mode.
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -f "$STACK_FILE" "$@"
  else
    docker-compose --compatibility -f "$STACK_FILE" "$@"
  fi
}

# GET (or POST with -X POST) a URL; the body on stdout, non-zero unless 2xx.
http() {
  curl --silent --show-error --fail --max-time "${HTTP_TIMEOUT:-5}" "$@"
}
