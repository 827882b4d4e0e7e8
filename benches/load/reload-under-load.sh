#!/usr/bin/env bash
# Load run (c) of issue #4: hot reload under load. HTTP webhook -> validate (canonical.order@1)
# -> map -> durable topic -> a topic consumer writing a file, with `railyard run` watching the
# project. `railyard-load http-post` sends N distinct orders at a fixed rate while this script
# rewrites the mapping once a second (a valid change: the `version` output field alternates
# v1/v2). Then railyard is stopped gracefully (SIGTERM) and the ids are counted: sent, accepted
# (202), in the output file. Fails unless nothing accepted was lost and nothing was duplicated.
#
# Usage: benches/load/reload-under-load.sh [rate] [seconds] (default 500 msg/s for 20 s)
#   CONNECTIONS=16      HTTP connections of the sender
#   PORT=n              the port railyard listens on (default: a free one)
#   NO_RELOAD=1         the control run: same load, the mapping is never rewritten
#   RAILYARD_BIN=path   use this railyard binary (default: cargo build --release, target/release)
#   LOAD_BIN=path       use this railyard-load binary
set -euo pipefail
cd "$(dirname "$0")/../.."
rate=${1:-500}
secs=${2:-20}
n=$((rate * secs))
conns=${CONNECTIONS:-16}
if [ -z "${RAILYARD_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
  cargo build --release -q -p railyard -p railyard-load
fi
bin=${RAILYARD_BIN:-$PWD/target/release/railyard}
load=${LOAD_BIN:-$PWD/target/release/railyard-load}
command -v jq >/dev/null || { echo "jq is not installed (apt-get install jq)" >&2; exit 2; }

work=$(mktemp -d)
pid=""
sender=""
cleanup() {
  for p in $sender $pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

proj="$work/project"
mkdir -p "$proj/schemas/load" "$proj/mappings" "$proj/pipelines"
cp -r schemas/. "$proj/schemas/"
cat > "$proj/schemas/load/order_summary@1.json" <<'JSON'
{
  "title": "Order summary (load runs)",
  "type": "object",
  "required": ["ref", "channel", "placed_at", "currency", "total", "net_items", "lines", "version"],
  "properties": {
    "ref": { "type": "string" },
    "number": { "type": ["string", "null"] },
    "channel": { "type": "string" },
    "email": { "type": ["string", "null"] },
    "placed_at": { "type": "string" },
    "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
    "total": { "$ref": "canonical.money@1" },
    "net_items": { "$ref": "canonical.money@1" },
    "lines": { "type": "array" },
    "version": { "type": "string", "enum": ["v1", "v2"] }
  },
  "additionalProperties": false
}
JSON
# mapping VERSION: the mapping file with `version` set to VERSION.
mapping() {
  cat <<YAML
mapping: canonical-order-to-load-summary
from: canonical.order@1
to: load.order_summary@1
fields:
  ref: order_id
  number: order_number
  channel: channel
  email: customer.email
  placed_at: ts_utc(placed_at)
  currency: currency
  total: money(totals.total.amount, totals.total.currency)
  net_items: "money(dec_sub(totals.items.amount, totals.discount.amount), currency)"
  lines: "lines[].{sku: sku, qty: quantity, price: money(unit_price.amount, unit_price.currency)}"
  version: "'$1'"
YAML
}
mapping v1 > "$proj/mappings/canonical-order-to-load-summary.yaml"
cat > "$proj/pipelines/load-intake.yaml" <<'YAML'
pipeline: load-intake
input:
  http: { path: /load/orders }
  schema: canonical.order@1
steps:
  - map: canonical-order-to-load-summary
output:
  topic: load.summaries
YAML
cat > "$proj/pipelines/load-sink.yaml" <<'YAML'
pipeline: load-sink
input:
  topic: load.summaries
  schema: load.order_summary@1
output:
  file: { path: sink.jsonl }
YAML
"$bin" validate "$proj" >"$work/validate.log" || { cat "$work/validate.log" >&2; exit 2; }

# A free port: nothing answers on it.
port=${PORT:-}
while [ -z "$port" ]; do
  port=$((20000 + RANDOM % 20000))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then port=""; fi
done
RAILYARD_OUTPUT_ROOT="$proj" "$bin" run "$proj" --listen "127.0.0.1:$port" --data "$work/data" 2>"$work/run.log" &
pid=$!
for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "127.0.0.1:$port/ready" >/dev/null || { echo "railyard run did not start" >&2; cat "$work/run.log" >&2; exit 1; }

if [ -n "${NO_RELOAD:-}" ]; then what="control: no reloads"; else what="the mapping changes every second"; fi
echo "== $n distinct orders at $rate msg/s over $conns connections; $what"
"$load" http-post --url "http://127.0.0.1:$port/load/orders" -n "$n" --rate "$rate" -c "$conns" \
  --id-field order_id --id-prefix "load:reload-$$-" \
  --accepted-out "$work/accepted.ids" --sent-out "$work/sent.ids" --latency-out "$work/latency.csv" \
  >"$work/post.json" 2>"$work/post.log" &
sender=$!
rewrites=0
v=v1
while kill -0 "$sender" 2>/dev/null; do
  sleep 1
  [ -n "${NO_RELOAD:-}" ] && continue
  if [ "$v" = v1 ]; then v=v2; else v=v1; fi
  # An editor's atomic save: write aside, rename over.
  mapping "$v" > "$proj/mappings/.canonical-order-to-load-summary.yaml.tmp"
  mv "$proj/mappings/.canonical-order-to-load-summary.yaml.tmp" "$proj/mappings/canonical-order-to-load-summary.yaml"
  rewrites=$((rewrites + 1))
done
wait "$sender" || true
sender=""
accepted=$(wc -l < "$work/accepted.ids")
# The sink catches up on the topic; then stop gracefully.
for _ in $(seq 1 600); do
  [ "$(wc -l < "$proj/sink.jsonl" 2>/dev/null || echo 0)" -ge "$accepted" ] && break
  sleep 0.1
done
sleep 1
health=$(curl -fs "127.0.0.1:$port/health" || echo '{}')
metrics=$(curl -fs "127.0.0.1:$port/metrics" || true)
kill -TERM "$pid"
wait "$pid" && stopped=ok || stopped="exit $?"
pid=""

p="$work/post.json"
jq -r '.ref' "$proj/sink.jsonl" | sort > "$work/out.ids"
sort -u "$work/out.ids" > "$work/out.distinct"
sort -u "$work/accepted.ids" > "$work/accepted.sorted"
sort -u "$work/sent.ids" > "$work/sent.sorted"
out_total=$(wc -l < "$work/out.ids")
out_distinct=$(wc -l < "$work/out.distinct")
lost=$(comm -23 "$work/accepted.sorted" "$work/out.distinct" | wc -l)
unknown=$(comm -13 "$work/sent.sorted" "$work/out.distinct" | wc -l)
not_accepted_but_out=$(comm -13 "$work/accepted.sorted" "$work/out.distinct" | wc -l)
dup=$((out_total - out_distinct))
v1=$(jq -r 'select(.version == "v1") | .ref' "$proj/sink.jsonl" | wc -l)
v2=$(jq -r 'select(.version == "v2") | .ref' "$proj/sink.jsonl" | wc -l)
echo "   sender: $(jq -c '{sent, accepted, status_503, other_status, transport_errors, gave_up, rate, request_p50_ms, request_p99_ms, message_p50_ms, message_p99_ms, message_max_ms}' "$p")"
echo "   requests over 100 ms: $(awk -F, 'NR > 1 && $2 > 100' "$work/latency.csv" | wc -l) of $(($(wc -l < "$work/latency.csv") - 1)); over 250 ms: $(awk -F, 'NR > 1 && $2 > 250' "$work/latency.csv" | wc -l)"
echo "   mapping rewrites: $rewrites; reloads (/health): $(jq -c '.reload | {reloads, failed}' <<<"$health")"
grep -E 'reload' <<<"$metrics" | sed 's/^/   metrics: /' || true
echo "   railyard stop on SIGTERM: $stopped"
echo "   ids sent $n, accepted $accepted, in the output $out_distinct distinct of $out_total lines (v1 $v1, v2 $v2)"
echo "   lost (accepted, not in the output): $lost; duplicated: $dup; in the output but not accepted: $not_accepted_but_out; unknown: $unknown"
if [ "$lost" -ne 0 ] || [ "$dup" -ne 0 ] || [ "$unknown" -ne 0 ]; then
  echo "FAIL: messages were lost or duplicated" >&2
  grep -iE 'error|warn' "$work/run.log" | head -20 >&2 || true
  exit 1
fi
echo "ok: zero lost, zero duplicated"
