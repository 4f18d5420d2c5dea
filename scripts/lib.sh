# Shared by the scripts: paths, and installing what is missing. Source it.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${NEXUS_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nexus-tool-mesh}"
TEMPORAL_VERSION="v1.5.1"   # Temporal CLI with dev server 1.29.1
TEMPORAL_CLI="${TEMPORAL_CLI:-$CACHE/bin/temporal}"
RUN_DIR="$ROOT/.run"
export TEMPORAL_CLI

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then return; fi
  if [ -x "$HOME/.local/bin/uv" ]; then export PATH="$HOME/.local/bin:$PATH"; return; fi
  say "installing uv (Python package manager) from PyPI"
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv \
    || die "could not install uv with pip; install it and retry"
  export PATH="$HOME/.local/bin:$PATH"
  command -v uv >/dev/null 2>&1 || die "uv installed but not on PATH"
}

# ensure_venv [--dev]: the project's virtualenv, exactly as uv.lock pins it.
ensure_venv() {
  ensure_uv
  # --inexact: the demo's sync must not remove dev tools that scripts/test installed.
  local groups=(--no-dev --inexact)
  [ "${1:-}" = "--dev" ] && groups=()
  # --compile-bytecode: machines that set PYTHONDONTWRITEBYTECODE=1 would
  # otherwise compile the SDKs from source at every process start (importing
  # the Agents SDK alone took about 7 s that way), in every worker, test
  # process and rollout; compiled once here, each start reads the bytecode.
  (cd "$ROOT" && uv sync --frozen --quiet --compile-bytecode "${groups[@]}") \
    || die "uv sync failed"
}

# The Temporal CLI (and its dev server) built from the Go module proxy into the
# cache, once: no prebuilt binary can be downloaded on every machine.
ensure_temporal() {
  if [ -x "$TEMPORAL_CLI" ]; then return; fi
  command -v go >/dev/null 2>&1 || die "Go is needed to build the Temporal CLI (go >= 1.25)"
  say "building Temporal CLI $TEMPORAL_VERSION into $CACHE/bin (first run only, ~3 min)"
  mkdir -p "$(dirname "$TEMPORAL_CLI")"
  GOBIN="$(dirname "$TEMPORAL_CLI")" GOFLAGS="-mod=mod" \
    go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION" \
    || die "building the Temporal CLI failed"
  [ -x "$TEMPORAL_CLI" ] || die "built the Temporal CLI but $TEMPORAL_CLI is missing"
}

# Debian's Chromium and its driver, for the browser test; never a downloaded browser.
ensure_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
  command -v apt-get >/dev/null 2>&1 || die "the browser test needs Debian's chromium and chromium-driver packages"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  say "installing Debian's chromium and chromium-driver (browser test)"
  $sudo apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q chromium chromium-driver >/dev/null; } \
    || die "could not install chromium and chromium-driver with apt-get"
}
