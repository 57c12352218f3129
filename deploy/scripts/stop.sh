#!/usr/bin/env bash
# Stops the observability stack. Data under deploy/data/ and the secrets stay; the
# agent saves its positions on SIGTERM, within the grace period given here.
#
# Usage: stop.sh [SERVICE...]   (no service: the whole stack, containers removed)
set -euo pipefail
# shellcheck source=deploy/scripts/lib.sh
source "$(dirname "$0")/lib.sh"

if [ $# -gt 0 ]; then
  compose stop --timeout 30 "$@"
else
  compose down --timeout 30
fi
