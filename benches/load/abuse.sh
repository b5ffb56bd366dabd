#!/usr/bin/env bash
# Memory under abuse, against a release build on loopback: peak RSS while 200 connections log
# in at once with the rate limit off (every request runs an argon2id verification, 19 MiB
# each, bounded by auth.max_concurrent_hashes), and while clients stream bodies far over
# server.body_limit_kb (chunked HTTP/1.1 and cleartext HTTP/2 with prior knowledge).
# Bounded: DURATION seconds per login run, uploads of UPLOAD_MB each.
#
#   benches/load/abuse.sh            # DURATION=5 CONNECTIONS=200 UPLOAD_MB=300
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-200}
UPLOAD_MB=${UPLOAD_MB:-300}
PORT=${PORT:-18081}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
ADMIN_EMAIL=admin@clinic.test
ADMIN_PASSWORD='a long benchmark password'

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

start_server() {
  FRONTDESK__DATABASE__URL="sqlite://$work/frontdesk.db?mode=rwc" \
  FRONTDESK__SERVER__PORT=$PORT \
  FRONTDESK__EMAIL__FILE_DIR="$work/mail" \
  FRONTDESK__LOG__LEVEL=warn \
  FRONTDESK__DEMO__SEED=false \
  FRONTDESK__RATE_LIMIT__ENABLED=false \
  FRONTDESK__BOOTSTRAP__ADMIN_EMAIL=$ADMIN_EMAIL \
  FRONTDESK__BOOTSTRAP__ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    "$TARGET_DIR/release/frontdesk" serve >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break
    sleep 0.2
  done
}
rss() { grep -E "^$1" "/proc/$pid/status" | awk '{print $2 / 1024 " MB"}'; }
base="http://127.0.0.1:$PORT"

# Counts the 503 `busy` answers across wrk's threads.
count_busy=$(cat <<'LUA'
local threads = {}
setup = function(thread) table.insert(threads, thread) end
busy = 0
response = function(status) if status == 503 then busy = busy + 1 end end
done = function()
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("busy") end
  print("503 busy: " .. total)
end
LUA
)
# Every request a new unknown address (a dummy verification, no throttle), or the admin's
# correct password (verification plus a session write).
cat >"$work/unknown.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"email":"nobody%d@clinic.test","password":"not the password"}', n)
  return wrk.format("POST", "/api/v1/auth/login", {["Content-Type"] = "application/json"}, body)
end
LUA
echo "$count_busy" >>"$work/unknown.lua"
cat >"$work/correct.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"$ADMIN_EMAIL","password":"$ADMIN_PASSWORD"}'
LUA
echo "$count_busy" >>"$work/correct.lua"

start_server
echo "cores: $(nproc); max_concurrent_hashes default: $((2 * $(nproc)))"
echo "after start: RSS $(rss VmRSS), peak $(rss VmHWM)"
for kind in unknown correct; do
  echo "== $CONNECTIONS connections logging in for ${DURATION}s ($kind addresses)"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency -s "$work/$kind.lua" \
    "$base/api/v1/auth/login" | grep -E 'requests in|Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors|503 busy'
  echo "peak RSS so far: $(rss VmHWM); now $(rss VmRSS)"
done
kill "$pid"; wait "$pid" 2>/dev/null || true

start_server
before=$(rss VmHWM)
echo "== ${UPLOAD_MB} MB streamed at POST /api/v1/enquiries (limit $((64)) kB)"
for mode in --http1.1 --http2-prior-knowledge; do
  status=$(head -c "${UPLOAD_MB}M" /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST "$mode" \
    -H 'Content-Type: application/json' -T - "$base/api/v1/enquiries" || true)
  echo "$mode: status $status; peak RSS $(rss VmHWM) (before the uploads: $before)"
done
