#!/usr/bin/env bash
# Installs what the tests, load tests and benchmarks need, idempotently: npm packages, Debian redis-server,
# prometheus, wrk and nginx-light, and k6 built with Go (cached in .cache/bin, skipped when present).
# Set SKIP_APT=1 when the Debian packages are already installed some other way; K6_BIN=/path to use your own k6.
# --npm-only: just the npm packages (what `npm start` needs). --chromium: also Debian's chromium, which only
# `npm run load -- all --report` uses (for the k6 dashboard screenshot in docs/).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

[ "${1:-}" = --npm-only ] && exit 0

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || need_apt+=(nginx-light)
if [ "${1:-}" = --chromium ]; then command -v chromium >/dev/null || need_apt+=(chromium); fi
if [ ${#need_apt[@]} -gt 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  log "apt-get install ${need_apt[*]}"
  $sudo apt-get update -qq
  # The packages' own services are not wanted: tests start their own servers on free ports.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  for svc in redis-server prometheus nginx; do $sudo service "$svc" stop >/dev/null 2>&1 || true; done
fi
for tool in redis-server prometheus wrk nginx; do
  command -v "$tool" >/dev/null || { log "ERROR: $tool is not installed and could not be installed"; exit 1; }
done

# Runs "$@" and logs "<message>… N s" every SETUP_PROGRESS_S (15) seconds meanwhile: a cold k6 build is otherwise
# a silent minute or two at the start of a first `npm test`.
with_progress() {
  local message=$1; shift
  local every=${SETUP_PROGRESS_S:-15} status=0
  ( start=$SECONDS; while sleep "$every"; do log "${message}… $((SECONDS - start)) s"; done ) &
  local ticker=$!
  trap 'kill "$ticker" 2>/dev/null' EXIT # Ctrl-C: the ticker ignores SIGINT as a background job, so end it here
  "$@" || status=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  trap - EXIT
  return "$status"
}

K6_VERSION=v1.8.1
K6="${K6_BIN:-$PWD/.cache/bin/k6}"
if [ ! -x "$K6" ] || ! "$K6" version 2>/dev/null | grep -q "k6 ${K6_VERSION}"; then
  command -v go >/dev/null || { log "ERROR: Go is needed to build k6 (or set K6_BIN to a packaged k6 ${K6_VERSION})"; exit 1; }
  log "building k6 ${K6_VERSION} with go install (once, 1-3 minutes; cached in .cache/bin)"
  mkdir -p .cache/bin
  with_progress "still building k6 (go install, once, cached in .cache/bin)" env GOBIN="$PWD/.cache/bin" go install "go.k6.io/k6@${K6_VERSION}"
  [ -n "${K6_BIN:-}" ] && log "WARNING: K6_BIN=$K6_BIN is not k6 ${K6_VERSION}; built ${K6_VERSION} into .cache/bin instead: unset K6_BIN to use it"
  K6="$PWD/.cache/bin/k6"
fi
# vegeta: the constant-rate load generator of `npm run bench`'s capacity search (lighter than k6 at high rates).
VEGETA_VERSION=v12.13.0
VEGETA="${VEGETA_BIN:-$PWD/.cache/bin/vegeta}"
# `go install` builds carry no version string to check, so a vegeta present is taken as the pinned one.
if [ ! -x "$VEGETA" ]; then
  command -v go >/dev/null || { log "ERROR: Go is needed to build vegeta (or set VEGETA_BIN to vegeta ${VEGETA_VERSION})"; exit 1; }
  log "building vegeta ${VEGETA_VERSION} with go install (once; cached in .cache/bin)"
  mkdir -p .cache/bin
  GOBIN="$PWD/.cache/bin" go install "github.com/tsenart/vegeta/v12@${VEGETA_VERSION}"
fi
log "ready: $(redis-server --version | cut -d' ' -f3) $(prometheus --version 2>&1 | head -1 | cut -d' ' -f3) $("$K6" version | head -1)"
