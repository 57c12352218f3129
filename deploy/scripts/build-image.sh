#!/usr/bin/env bash
# Builds the nexo-agent image without pulling anything from an image registry:
#   1. the base image (deploy/scripts/build-base-image.sh; kept and reused once built),
#   2. wheels of the agent and its dependencies from PyPI, on the host, into dist/wheels
#      (PIP_CONSTRAINT=FILE pins them, e.g. to a tested venv's `pip freeze`),
#   3. `docker build` of the Dockerfile at the top of the repository.
#
# Usage: build-image.sh [IMAGE]   (default nexo-agent:local)
# Environment: BASE_IMAGE (default nexo-agent-base:local), PYTHON (default python3, a
# Python 3.11 with pip; the wheels must match the image's CPython 3.11).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
image=${1:-nexo-agent:local}
base=${BASE_IMAGE:-nexo-agent-base:local}
python=${PYTHON:-python3}

"$repo/deploy/scripts/build-base-image.sh" "$base"

# Build the agent's wheel from a clean copy: setuptools reuses a stale build/ directory.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r "$repo/pyproject.toml" "$repo/setup.py" "$repo/README.md" "$repo/agent" "$src/"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
# The C speedups are compiled into the wheel here (the image has no compiler), fresh.
find "$src" -name "*.so" -delete
rm -rf "$repo/dist/wheels"
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$repo/dist/wheels" "$src" \
  2> >(grep -v "^WARNING: Location '" >&2)

version=$("$python" - "$repo/dist/wheels" <<'PY'
import pathlib, sys
names = [p.name for p in pathlib.Path(sys.argv[1]).glob("nexo_agent-*.whl")]
print(names[0].split("-")[1] if names else "dev")
PY
)
# The legacy builder: BuildKit (buildx) is not part of every Docker install.
DOCKER_BUILDKIT=0 docker build --quiet --network none \
  --build-arg "BASE=$base" --build-arg "VERSION=$version" \
  -t "$image" -f "$repo/Dockerfile" "$repo" >/dev/null
# Earlier builds' images, untagged by this one (the label keeps other images out of it).
docker image prune --force --filter "label=org.opencontainers.image.title=nexo-agent" >/dev/null
echo "built $image (nexo-agent $version on $base)"
