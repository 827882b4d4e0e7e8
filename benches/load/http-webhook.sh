#!/usr/bin/env bash
# Load run (a) of issue #4: HTTP webhook -> validate -> map -> topic (durable, fsynced) with a
# topic consumer writing a file, against baselines measured in the same run on the same server:
# GET /ready and GET /health (no processing). Quote the ratio, not the absolute numbers (shared
# machines). After the webhook phase the sink file is watched until it stops growing (5 s), and
# the consumer's drain (lines written after wrk stopped, and how fast) is printed.
#
# Needs wrk (Debian: apt-get install wrk). Usage: benches/load/http-webhook.sh [seconds]
#   RAILYARD_BIN=path   use this railyard binary (default: cargo build --release, target/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
if [ -z "${RAILYARD_BIN:-}" ]; then cargo build --release -q -p railyard; fi
bin=${RAILYARD_BIN:-$PWD/target/release/railyard}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r schemas mappings plugins "$work/"
mkdir -p "$work/tests" && cp -r tests/fixtures "$work/tests/"
mkdir -p "$work/pipelines"
cat > "$work/pipelines/bench-intake.yaml" <<'YAML'
pipeline: bench-intake
input:
  http: { path: /bench/orders, max_body: 1MiB }
  schema: shopify.order@1
steps:
  - map: shopify-order-to-canonical
output:
  topic: bench.orders
YAML
cat > "$work/pipelines/bench-sink.yaml" <<'YAML'
pipeline: bench-sink
input:
  topic: bench.orders
  schema: canonical.order@1
output:
  file: { path: sink.jsonl }
YAML
port=18199
RAILYARD_OUTPUT_ROOT="$work" "$bin" run "$work" --listen 127.0.0.1:$port --no-watch 2>"$work/run.log" &
pid=$!
for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
export RAILYARD_FIXTURE="$PWD/tests/fixtures/shopify/orders_create.body.json"
summary() { grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors"; }
lines() { if [ -f "$work/sink.jsonl" ]; then wc -l <"$work/sink.jsonl"; else echo 0; fi; }
echo "== baseline: GET /ready"
wrk -t2 -c16 -d"${secs}s" --latency "http://127.0.0.1:$port/ready" | summary
echo "== webhook: POST 13.8 KB Shopify order -> validate -> map -> durable topic"
wrk -t2 -c16 -d"${secs}s" --latency -s benches/load/post-shopify.lua "http://127.0.0.1:$port/bench/orders" \
  | tee "$work/webhook.wrk" | summary
# The topic consumer falls behind while wrk runs: wait until the sink has not grown for 5 s.
t0=$(date +%s.%N); at_stop=$(lines); last=$at_stop; t_last=$t0
while :; do
  sleep 0.2
  n=$(lines); t=$(date +%s.%N)
  if [ "$n" != "$last" ]; then last=$n; t_last=$t; fi
  awk -v a="$t" -v b="$t_last" -v c="$t0" 'BEGIN { exit !(a - b >= 5 || a - c >= 600) }' && break
done
awk -v r="$(awk '/requests in/ { print $1 }' "$work/webhook.wrk")" -v s="$at_stop" -v n="$last" -v a="$t_last" -v b="$t0" \
  'BEGIN { d = a - b; printf "== consumer wrote %d lines (wrk counted %d completed requests; up to 16 more were in flight when it stopped); %d of them after wrk stopped, in %.1f s: %.0f lines/s\n", n, r, n - s, d, (d > 0 ? (n - s) / d : 0) }'
echo "== baseline: GET /health"
wrk -t2 -c16 -d"${secs}s" --latency "http://127.0.0.1:$port/health" | summary
