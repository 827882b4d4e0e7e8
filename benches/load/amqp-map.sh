#!/usr/bin/env bash
# Load run (b) of issue #4: AMQP -> map -> AMQP, against a baseline measured in the same run on
# the same broker: a bare consume -> publish forwarder (`railyard-load forward`: manual acks,
# the same prefetch, publisher confirms, the source acked only after its copy was confirmed).
#
# The pipeline: AMQP in (schema canonical.order@1, validated on arrival) -> map (JMESPath: rename,
# money, timestamp; output checked against its schema) -> AMQP out (persistent, confirms).
# For each of the two, N messages (the canonical order fixture, 3.2 KB, each with its own
# order_id and message_id) are pre-loaded into a source queue; then a drain starts on the sink
# queue, the consumer starts, and the drain times the sink from its first to its last message.
# Quote the ratio railyard/forwarder, not the absolute numbers (shared machines).
#
# Needs RabbitMQ on 127.0.0.1:5672 (guest/guest) or RAILYARD_AMQP_URL.
# Usage: benches/load/amqp-map.sh [N] (default 100000)
#   PREFETCH=64         the prefetch of both consumers
#   RAILYARD_BIN=path   use this railyard binary (default: cargo build --release, target/release)
#   LOAD_BIN=path       use this railyard-load binary
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}
prefetch=${PREFETCH:-64}
export RAILYARD_AMQP_URL=${RAILYARD_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
if [ -z "${RAILYARD_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
  cargo build --release -q -p railyard -p railyard-load
fi
bin=${RAILYARD_BIN:-$PWD/target/release/railyard}
load=${LOAD_BIN:-$PWD/target/release/railyard-load}
command -v jq >/dev/null || { echo "jq is not installed (apt-get install jq)" >&2; exit 2; }

tag="ryl-bench-$$"
queues=("$tag.fwd.src" "$tag.fwd.dst" "$tag.fwd2.src" "$tag.fwd2.dst" "$tag.fwdc.src" "$tag.fwdc.dst"
  "$tag.map.src" "$tag.map.dst")
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  "$load" amqp-queue delete "${queues[@]}" >/dev/null 2>&1 || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The project: one pipeline, AMQP in (validated against canonical.order@1, as the map step
# requires) -> JMESPath map (rename, money, timestamp; its output checked against
# load.order_summary@1) -> AMQP out (confirms, persistent).
cp -r schemas "$work/"
mkdir -p "$work/schemas/load" "$work/mappings" "$work/pipelines"
cat > "$work/schemas/load/order_summary@1.json" <<'JSON'
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
    "lines": {
      "type": "array",
      "items": {
        "type": "object",
        "required": ["sku", "qty", "price"],
        "properties": {
          "sku": { "type": "string" },
          "qty": { "type": "integer" },
          "price": { "$ref": "canonical.money@1" }
        }
      }
    },
    "version": { "type": "string" }
  },
  "additionalProperties": false
}
JSON
cat > "$work/mappings/canonical-order-to-load-summary.yaml" <<'YAML'
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
  version: "'v1'"
YAML
cat > "$work/pipelines/amqp-map.yaml" <<YAML
pipeline: amqp-map
input:
  amqp: { queue: "$tag.map.src", prefetch: $prefetch }
  schema: canonical.order@1
steps:
  - map: canonical-order-to-load-summary
output:
  amqp: { exchange: "", routing_key: "$tag.map.dst" }
YAML
"$bin" validate "$work" >"$work/validate.log" || { cat "$work/validate.log" >&2; exit 2; }

# CPU seconds (user + system) a process has used so far.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
broker_pid=$(pgrep -o -x beam.smp || true)

# run NAME SRC DST COMMAND...: pre-load SRC, drain DST while COMMAND consumes SRC.
run() {
  local name=$1 src=$2 dst=$3
  shift 3
  "$load" amqp-queue delete "$src" "$dst" >/dev/null 2>&1 || true
  "$load" amqp-queue declare "$src" "$dst" >/dev/null 2>"$work/$name.queue.log" || { cat "$work/$name.queue.log" >&2; exit 1; }
  local pub
  if ! pub=$("$load" amqp-publish --queue "$src" -n "$n" --id-field order_id --id-prefix "load:$name-$$-" 2>"$work/$name.pub.log"); then
    echo "pre-loading $src failed:" >&2; cat "$work/$name.pub.log" >&2; exit 1
  fi
  echo "   pre-loaded $(jq .confirmed <<<"$pub") messages into $src at $(jq .rate <<<"$pub") msg/s"
  "$load" amqp-drain --queue "$dst" -n "$n" --id-prefix "load:$name-$$-" --idle 60 --show-first \
    >"$work/$name.drain.json" 2>"$work/$name.drain.log" &
  local drain=$!
  sleep 0.5
  local broker0=0
  [ -n "$broker_pid" ] && broker0=$(cpu_s "$broker_pid")
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  wait "$drain" || true
  local cpu broker1=0
  cpu=$(cpu_s "$pid")
  [ -n "$broker_pid" ] && broker1=$(cpu_s "$broker_pid")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
  local d="$work/$name.drain.json"
  jq -e .distinct "$d" >/dev/null 2>&1 || { echo "the drain failed:" >&2; cat "$work/$name.drain.log" "$work/$name.err" >&2; exit 1; }
  printf '   sink: %s distinct of %s, %s duplicates, %s missing; %s s first to last: %s msg/s\n' \
    "$(jq .distinct "$d")" "$n" "$(jq .duplicates "$d")" "$(jq .missing "$d")" \
    "$(jq .first_to_last_s "$d")" "$(jq .rate "$d")"
  echo "   cpu: consumer $cpu s, broker $(awk -v a="$broker0" -v b="$broker1" 'BEGIN { printf "%.2f", b - a }') s"
  jq .rate "$d" >"$work/$name.rate"
}

echo "== baseline: forward (consume -> publish with confirms -> ack), prefetch $prefetch, $n messages, one connection"
run fwd "$tag.fwd.src" "$tag.fwd.dst" \
  "$load" forward --from "$tag.fwd.src" --to "$tag.fwd.dst" --prefetch "$prefetch"
echo "== baseline: the same forwarder on two connections (consume, publish), as railyard run connects"
run fwd2 "$tag.fwd2.src" "$tag.fwd2.dst" \
  "$load" forward --from "$tag.fwd2.src" --to "$tag.fwd2.dst" --prefetch "$prefetch" --separate-connections
echo "== baseline: the forwarder on two connections, acks coalesced as railyard run does them"
run fwdc "$tag.fwdc.src" "$tag.fwdc.dst" \
  "$load" forward --from "$tag.fwdc.src" --to "$tag.fwdc.dst" --prefetch "$prefetch" --separate-connections --coalesce-acks
echo "== railyard run: AMQP -> map canonical-order-to-load-summary -> AMQP (confirms), prefetch $prefetch"
run map "$tag.map.src" "$tag.map.dst" \
  "$bin" run "$work" --listen 127.0.0.1:0 --no-watch --data "$work/data"
grep -o 'first body: .*' "$work/map.drain.log" | cut -c1-200 | sed 's/^/   /'
fwd=$(cat "$work/fwd.rate")
fwd2=$(cat "$work/fwd2.rate")
fwdc=$(cat "$work/fwdc.rate")
map=$(cat "$work/map.rate")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "== railyard/forwarder: $(ratio "$map" "$fwd") ($map / $fwd msg/s)"
echo "== railyard/forwarder on two connections: $(ratio "$map" "$fwd2") ($map / $fwd2 msg/s)"
echo "== railyard/forwarder with coalesced acks: $(ratio "$map" "$fwdc") ($map / $fwdc msg/s)"
