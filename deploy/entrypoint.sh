#!/bin/sh
# The image's entry point: one image, one command per component of the mesh.
# `exec` replaces this shell, so the component is PID 1 and receives SIGTERM
# itself: workers stop polling and drain, the API closes its connections.
set -eu

usage() {
    cat >&2 <<'EOF'
usage: <image> COMPONENT [ARGS...]

  orchestrator     the orchestrator's worker     (python -m workers.orchestrator)
  team <name>      a team's worker, e.g. it      (python -m workers.team <name>)
  api              the HTTP API and web chat     (python -m orchestrator.api)
  setup            create namespaces, endpoints  (python -m workers.setup)
  rollout ...      promote, wait-drained, versions (python -m meshkit.rollout)

Settings come from the environment: MESH_FILE, TEMPORAL_ADDRESS,
TEMPORAL_API_KEY, TEMPORAL_TLS, MESH_HEALTH_PORT, ... (see deploy/README.md).
EOF
    exit "$1"
}

[ "$#" -gt 0 ] || usage 64
component="$1"
shift

case "$component" in
    orchestrator) exec python -m workers.orchestrator "$@" ;;
    team) exec python -m workers.team "$@" ;;
    api) exec python -m orchestrator.api "$@" ;;
    setup) exec python -m workers.setup "$@" ;;
    rollout) exec python -m meshkit.rollout "$@" ;;
    -h | --help | help) usage 0 ;;
    *)
        echo "unknown component: $component" >&2
        usage 64
        ;;
esac
