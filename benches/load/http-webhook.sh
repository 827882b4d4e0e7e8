#!/usr/bin/env bash
# Load run (a) of issue #4: HTTP webhook -> validate -> map -> topic (durable, fsynced) with a
# topic consumer writing a file, against a baseline measured in the same run on the same server:
# GET /ready (no processing). Quote the ratio, not the absolute numbers (shared machines).
#
# Needs wrk (Debian: apt-get install wrk). Usage: benches/load/http-webhook.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release -q -p railyard
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
./target/release/railyard run "$work" --listen 127.0.0.1:$port --no-watch 2>"$work/run.log" &
pid=$!
for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
export RAILYARD_FIXTURE="$PWD/tests/fixtures/shopify/orders_create.body.json"
echo "== baseline: GET /ready"
wrk -t2 -c16 -d"${secs}s" --latency "http://127.0.0.1:$port/ready" | grep -E "Requests/sec|99%|Non-2xx"
echo "== webhook: POST 13.8 KB Shopify order -> validate -> map -> durable topic"
wrk -t2 -c16 -d"${secs}s" --latency -s benches/load/post-shopify.lua "http://127.0.0.1:$port/bench/orders" | grep -E "Requests/sec|99%|Non-2xx"
sleep 2
echo "== consumer wrote $(wc -l < "$work/sink.jsonl") lines"
