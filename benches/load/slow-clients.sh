#!/usr/bin/env bash
# Slow and unauthenticated clients against `railyard run` (issue 10): SLOW slowloris
# connections (headers sent a line every 2 s, never finished) and UPLOADS concurrent unsigned
# POSTs of UPLOAD_BYTES, each paced over UPLOAD_SECS so all are in flight at once, to a
# signature-only route (max_body 4 MiB), while a legit signed
# webhook is sent every 0.5 s (a 503 retried after its Retry-After, as platforms do). Reports
# the server's RSS (/proc/PID/status VmRSS) before, at peak, at the end of the attack and
# SETTLE_SECS after; its open sockets at peak; what the slow connections, the uploads and the
# legit sender got. Bounded: the attack lasts ATTACK_SECS (or until the uploads are done).
#
# Usage: benches/load/slow-clients.sh
#   RAILYARD_BIN=path   use this railyard binary (default: cargo build --release, target/release)
#   RUN_FLAGS="..."     extra flags for `railyard run` (e.g. "--max-unauthenticated-reads 16")
#   SLOW=500 UPLOADS=100 UPLOAD_BYTES=3900000 UPLOAD_SECS=5 ATTACK_SECS=30 SETTLE_SECS=15
#   KEEP=1              keep the temporary project and the server's log
# Needs python3. Prints a JSON summary on stdout, readable lines on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v python3 >/dev/null || { echo "python3 is not installed" >&2; exit 2; }
if [ -z "${RAILYARD_BIN:-}" ]; then cargo build --release -q -p railyard; fi
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=${RAILYARD_BIN:-$target/release/railyard}
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work/pipelines"
cat > "$work/pipelines/signed.yaml" <<'YAML'
pipeline: signed
input:
  http:
    path: /hooks/signed
    max_body: 4MiB
    verify:
      hmac_sha256: { header: X-Sig, secret: s3cret, encoding: base64 }
output:
  stdout: {}
YAML
# Many sockets: the slow clients, the uploads and the server's own descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
port=${PORT:-18299}
# shellcheck disable=SC2086
"$bin" run "$work" --listen 127.0.0.1:$port --no-watch ${RUN_FLAGS:-} >"$work/stdout.log" 2>"$work/run.log" &
pid=$!
ready=
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/ready', timeout=1)" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "railyard run did not become ready:" >&2; cat "$work/run.log" >&2; exit 1; }
echo "== railyard $("$bin" --version 2>/dev/null || echo "$bin") pid $pid, flags: ${RUN_FLAGS:-(defaults)}" >&2
python3 benches/load/slow_clients.py "$port" "$pid"
