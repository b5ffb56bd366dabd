#!/usr/bin/env bash
# Load test of GET /api/v1/availability against a release build on loopback.
#
# Starts the service on a fresh SQLite database with the demo clinic, then runs wrk with 64
# connections for a one-week query of one service across all its practitioners, side by side
# with GET /health/live (the framework's ceiling on this machine). Bounded: DURATION seconds
# per run, loopback only.
#
#   benches/load/availability.sh            # DURATION=10 CONNECTIONS=64 by default
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18080}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

start_server() { # $1 = availability.answer_cache_ms
  FRONTDESK__DATABASE__URL="sqlite://$work/frontdesk.db?mode=rwc" \
  FRONTDESK__SERVER__PORT=$PORT \
  FRONTDESK__EMAIL__FILE_DIR="$work/mail" \
  FRONTDESK__LOG__LEVEL=warn \
  FRONTDESK__AVAILABILITY__ANSWER_CACHE_MS=$1 \
    "$TARGET_DIR/release/frontdesk" serve >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break
    sleep 0.2
  done
}
start_server 1000

base="http://127.0.0.1:$PORT"
service_id=$(curl -sf "$base/api/v1/services" | python3 -c \
  'import json,sys; print(next(s["id"] for s in json.load(sys.stdin) if s["slug"]=="physio-follow-up"))')
from=$(date -u -d '+1 day' +%F)
to=$(date -u -d '+7 days' +%F)
query="$base/api/v1/availability?service_id=$service_id&from=$from&to=$to"
slots=$(curl -sf "$query" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["slots"]))')
echo "one-week query: $slots slots across the service's practitioners"

run() {
  echo "== $1"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$2" | grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors'
}
run "GET /health/live (ceiling)" "$base/health/live"
run "GET /api/v1/availability (one week; answers kept 1 s, the default)" "$query"
echo "peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
kill "$pid"; wait "$pid" 2>/dev/null || true
start_server 0
run "GET /api/v1/availability (one week; answer cache off: every request computed)" "$query"
