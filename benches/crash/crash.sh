#!/usr/bin/env bash
# Crash harness (issue 9, "Done when"): kills `railyard run` with SIGKILL at random points while
# it works, restarts it on the same --data directory each time, and counts what came out.
#
#   (a) file drop: one CSV file of CRASH_ROWS POS rows (default 20,000) dropped into the
#       `crash-pos-drop` pipeline: file input, dedupe on transaction + line, one JSON line per
#       row appended to a file;
#   (b) webhooks: CRASH_EVENTS distinct events (default 10,000) POSTed to `crash-webhook` by
#       `railyard-load webhook-retry`, which re-sends each event with the same X-Event-Id until
#       it is answered 2xx, as a webhook platform does; dedupe on that id, one JSON line per
#       event appended to a file.
#
# The pipelines are in benches/crash/project (copied to a temporary directory for each
# scenario). Each scenario is killed CRASH_KILLS times (default 10), each kill a random delay
# after the previous (re)start, then runs to the end and is stopped with SIGTERM. Per scenario it
# prints delivered/expected, missing (must be 0), duplicates (counted and reported: the dedupe
# steps drop what the source re-sends, but a kill between the file append and the commit of the
# message still writes it twice; see README.md) and which lost ids the log shows dropped as a
# "duplicate" of themselves.
#
# Exit 0 when nothing is missing; 1 when something is missing (or duplicated, with
# CRASH_FAIL_ON_DUPLICATES=1); 2 when the harness itself could not run.
#
# Usage: benches/crash/crash.sh
#   CRASH_ROWS=20000        rows in the dropped file (scenario a)
#   CRASH_EVENTS=10000      distinct webhook events (scenario b)
#   CRASH_KILLS=10          SIGKILLs per scenario
#   CRASH_SCENARIOS="file webhook"   which scenarios to run
#   CRASH_KILL_MIN_MS=1000 CRASH_KILL_MAX_MS=20000
#                           each kill comes a uniformly random delay after the previous
#                           (re)start became ready, between MIN and an upper bound that spreads
#                           the kills left over the work left (the estimated time left, from the
#                           throughput so far, over the kills left), at most MAX
#   CRASH_DOWN_MAX_MS=0     a random pause of up to this long between a kill and the restart
#   CRASH_RATE=400          webhook events released per second (0: as fast as answered)
#   CRASH_CONNECTIONS=16    sender connections
#   CRASH_TIMEOUT=600       seconds a scenario may take after its last kill before it is given up
#   CRASH_SEED=n            seed for the kill delays (printed; default random)
#   CRASH_FAIL_ON_DUPLICATES=1   exit 1 on duplicates too
#   RAILYARD_BIN, RAILYARD_LOAD_BIN   the binaries (default: target/release/, built with cargo
#                           build --release when neither is given)
#   KEEP=1                  keep the temporary directory (projects, data, outputs, logs)
#
# Quick try (about 30 s): CRASH_ROWS=3000 CRASH_EVENTS=2000 CRASH_KILLS=3 benches/crash/crash.sh
set -euo pipefail
# One compound command: bash reads it whole before running it, so editing this file during a run
# (minutes) cannot change what the run does.
{
cd "$(dirname "$0")/../.."
repo=$PWD
rows=${CRASH_ROWS:-20000}
events=${CRASH_EVENTS:-10000}
kills=${CRASH_KILLS:-10}
scenarios=${CRASH_SCENARIOS:-file webhook}
kill_min=${CRASH_KILL_MIN_MS:-1000}
kill_max=${CRASH_KILL_MAX_MS:-20000}
down_max=${CRASH_DOWN_MAX_MS:-0}
rate=${CRASH_RATE:-400}
conns=${CRASH_CONNECTIONS:-16}
timeout=${CRASH_TIMEOUT:-600}
seed=${CRASH_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$seed

load_bin=${RAILYARD_LOAD_BIN:-${LOAD_BIN:-}}
if [ -z "${RAILYARD_BIN:-}" ] && [ -z "$load_bin" ]; then
  cargo build --release -q -p railyard -p railyard-load
fi
bin=${RAILYARD_BIN:-$repo/target/release/railyard}
load=${load_bin:-$repo/target/release/railyard-load}
for b in "$bin" "$load"; do
  [ -x "$b" ] || { echo "no executable $b (build it, or set RAILYARD_BIN / RAILYARD_LOAD_BIN)" >&2; exit 2; }
done
for c in jq curl awk; do
  command -v "$c" >/dev/null || { echo "$c is not installed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/railyard-crash.XXXXXX")
pid=""
sender=""
cleanup() {
  for p in $sender $pid; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
# rand_ms LO HI: a uniformly random integer in [LO, HI].
rand_ms() {
  local lo=$1 hi=$2
  [ "$hi" -le "$lo" ] && { echo "$lo"; return; }
  echo $(( lo + ( (RANDOM << 15 | RANDOM) % (hi - lo + 1) ) ))
}
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

port=""
free_port() {
  port=""
  while [ -z "$port" ]; do
    port=$((20000 + RANDOM % 20000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then port=""; fi
  done
}

# start: runs railyard on the scenario's project and data directory; waits for /ready.
start() {
  RAILYARD_OUTPUT_ROOT="$proj" RAILYARD_LOG_FORMAT=json "$bin" run "$proj" --listen "127.0.0.1:$port" --data "$data" --no-watch \
    >>"$dir/run.log" 2>&1 &
  pid=$!
  local t0 t
  t0=$(now_ms)
  while :; do
    curl -fs -m 1 "127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "railyard run exited at start:" >&2; tail -20 "$dir/run.log" >&2; exit 2
    fi
    t=$(now_ms)
    if [ $((t - t0)) -gt 30000 ]; then
      echo "railyard run not ready after 30 s:" >&2; tail -20 "$dir/run.log" >&2; exit 2
    fi
    sleep 0.05
  done
  ready_ms=$(( $(now_ms) - t0 ))
}

# The per-scenario hooks: out (the output file), expected (the expected ids, sorted), finished
# (0 when the input side is done), ids (the id of each output line).
summary=()
failed=0
incomplete=0

run_scenario() {
  local name=$1 n=$2
  dir="$work/$name"
  proj="$dir/project"
  data="$dir/data"
  mkdir -p "$dir"
  cp -r benches/crash/project "$proj"
  mkdir -p "$proj/out" "$proj/inbox/pos"
  "$bin" validate "$proj" >"$dir/validate.log" 2>&1 || { cat "$dir/validate.log" >&2; exit 2; }
  free_port
  local t_start
  t_start=$(now_ms)

  case $name in
    file)
      out="$proj/out/pos-lines.jsonl"
      echo "== (a) file drop: one CSV file of $n POS rows, $kills kills (seed $seed)"
      # Two lines per transaction, every row a completed sale; ids T<seq/2>-<line>.
      awk -v n="$n" 'BEGIN {
        print "store_id,register_id,transaction_id,line_no,status,sku,qty,line_total,currency"
        for (i = 0; i < n; i++) {
          tx = sprintf("S%03d-R01-%07d", i % 40, int(i / 2))
          printf "S%03d,R01,%s,%d,COMPLETED,SKU-%05d,%d,%d.%02d,USD\n", i % 40, tx, i % 2 + 1, i % 997, i % 5 + 1, 10 + i % 90, i % 100
        }
      }' > "$proj/inbox/pos/.store_sales_lines_crash.csv.part"
      awk -F, 'NR > 1 { print $3 "-" $4 }' "$proj/inbox/pos/.store_sales_lines_crash.csv.part" | sort -u > "$dir/expected.ids"
      # Dropped whole (write aside, rename): the drop never sees a partial file.
      mv "$proj/inbox/pos/.store_sales_lines_crash.csv.part" "$proj/inbox/pos/store_sales_lines_crash.csv"
      start
      ;;
    webhook)
      out="$proj/out/webhook-events.jsonl"
      echo "== (b) webhooks: $n distinct events at up to $rate/s over $conns connections, each re-sent with its X-Event-Id until 2xx; $kills kills (seed $seed)"
      local prefix="crash-$$-"
      for ((i = 0; i < n; i++)); do echo "$prefix$i"; done | sort -u > "$dir/expected.ids"
      start
      "$load" webhook-retry --url "http://127.0.0.1:$port/crash/events" -n "$n" --rate "$rate" \
        -c "$conns" --id-header X-Event-Id --payload benches/crash/event.json \
        --id-field event_id --seq-field seq --id-prefix "$prefix" \
        --retry-min-ms 50 --retry-max-ms 1000 --max-retry-after 1 --deadline $((timeout + kills * 10)) \
        --accepted-out "$dir/accepted.ids" --failed-out "$dir/failed.ids" \
        >"$dir/sender.json" 2>"$dir/sender.log" &
      sender=$!
      ;;
  esac

  # finished: 0 once the input side is done (the file moved out of the inbox; the sender exited).
  finished() {
    case $name in
      file) [ -n "$(ls -A "$proj/inbox/pos/done" 2>/dev/null)" ] || [ -n "$(ls -A "$proj/inbox/pos/failed" 2>/dev/null)" ] ;;
      webhook) ! kill -0 "$sender" 2>/dev/null ;;
    esac
  }

  local k delay hi at_lines done_kills=0 late=0 t_kill eta remaining rate_obs seg_lines seg_t
  seg_lines=0
  seg_t=$(now_ms)
  for ((k = 1; k <= kills; k++)); do
    # Each kill comes a random delay in [min, hi] after the last (re)start was ready. hi spreads
    # the remaining kills over the remaining work: the estimated time left (from the throughput
    # so far, measured after the first `min`) over the kills left, at most `max`; so the kills
    # fall over roughly the first two thirds of the work, and all of them before its end.
    sleep "$(awk -v ms="$kill_min" 'BEGIN { printf "%.3f", ms / 1000 }')"
    at_lines=$(lines "$out")
    hi=$kill_max
    # (Only once enough is out to measure: at first the file is still settling in the inbox.)
    if [ "$at_lines" -ge 50 ] && [ "$at_lines" -ge $((n / 100)) ]; then
      remaining=$(( n > at_lines ? n - at_lines : 0 ))
      # The faster of the throughput since the scenario started and since the last restart.
      rate_obs=$(awk -v l="$at_lines" -v ms="$(( $(now_ms) - t_start ))" \
        -v sl="$((at_lines - seg_lines))" -v sms="$(( $(now_ms) - seg_t ))" \
        'BEGIN { a = l / (ms > 0 ? ms : 1); b = sl / (sms > 0 ? sms : 1); printf "%.6f", (a > b ? a : b) }')
      eta=$(awk -v r="$remaining" -v v="$rate_obs" -v k=$((kills - k + 1)) 'BEGIN { printf "%d", r / (v > 0 ? v : 1) / k }')
      [ "$eta" -lt "$hi" ] && hi=$eta
    elif [ "$hi" -gt $((2 * kill_min)) ]; then
      hi=$((2 * kill_min))
    fi
    [ "$hi" -lt "$kill_min" ] && hi=$kill_min
    delay=$(rand_ms "$kill_min" "$hi")
    sleep "$(awk -v ms="$((delay - kill_min))" 'BEGIN { printf "%.3f", ms / 1000 }')"
    if finished; then
      late=$((kills - k + 1))
      echo "   the work finished before kill $k: $late kill(s) not made"
      break
    fi
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    at_lines=$(lines "$out")
    done_kills=$((done_kills + 1))
    t_kill=$(now_ms)
    if [ "$down_max" -gt 0 ]; then
      sleep "$(awk -v ms="$(rand_ms 0 "$down_max")" 'BEGIN { printf "%.3f", ms / 1000 }')"
    fi
    start
    seg_lines=$(lines "$out")
    seg_t=$(now_ms)
    printf '   kill %2d: %5.2f s after ready, %d of %d lines out; down %.2f s\n' "$k" \
      "$(awk -v ms="$delay" 'BEGIN { print ms / 1000 }')" "$at_lines" "$n" \
      "$(awk -v ms="$(( $(now_ms) - t_kill ))" 'BEGIN { print ms / 1000 }')"
  done

  # Run to the end: the input side finished and the output file unchanged for 3 s.
  local t0 last cur still=0 gave_up=""
  t0=$(now_ms)
  last=-1
  while :; do
    cur=$(lines "$out")
    if finished && [ "$cur" -eq "$last" ]; then
      still=$((still + 1))
      [ "$still" -ge 6 ] && break
    else
      still=0
    fi
    last=$cur
    if [ $(( $(now_ms) - t0 )) -gt $((timeout * 1000)) ]; then gave_up=" (gave up waiting after ${timeout} s)"; break; fi
    sleep 0.5
  done
  if [ -n "$sender" ]; then
    wait "$sender" 2>/dev/null || true
    sender=""
  fi
  kill -TERM "$pid"
  local stopped
  wait "$pid" && stopped=ok || stopped="exit $?"
  pid=""
  local elapsed=$(( $(now_ms) - t_start ))

  # Count. A line that is not JSON (a write torn by a kill) is counted apart.
  local id_expr
  case $name in
    file) id_expr='"\(.transaction_id)-\(.line_no)"' ;;
    webhook) id_expr='.event_id' ;;
  esac
  jq -rR "fromjson? // empty | $id_expr" "$out" 2>/dev/null | sort > "$dir/out.ids" || true
  sort -u "$dir/out.ids" > "$dir/out.distinct"
  local total distinct missing dups unexpected torn all_lines
  all_lines=$(lines "$out")
  total=$(lines "$dir/out.ids")
  distinct=$(lines "$dir/out.distinct")
  comm -23 "$dir/expected.ids" "$dir/out.distinct" > "$dir/missing.ids"
  missing=$(lines "$dir/missing.ids")
  unexpected=$(comm -13 "$dir/expected.ids" "$dir/out.distinct" | wc -l)
  dups=$((total - distinct))
  torn=$((all_lines - total))
  uniq -d "$dir/out.ids" > "$dir/duplicated.ids"

  # What the log says: rows/events dropped by the dedupe step, and which of them are missing.
  jq -rR 'fromjson? // empty | (.fields // .) | select((.message // "") == "Dropped message.") | .reason // empty' \
    "$dir/run.log" 2>/dev/null | sed -n 's/^duplicate of `\(.*\)`$/\1/p' | sort > "$dir/dropped-dup.keys" || true
  local dropped_dup lost_as_dup dead_letters
  dropped_dup=$(lines "$dir/dropped-dup.keys")
  lost_as_dup=$(sort -u "$dir/dropped-dup.keys" | comm -12 - "$dir/missing.ids" | wc -l)
  dead_letters=$(grep -ci 'dead.letter' "$dir/run.log" || true)
  # Since the unit of work (0e1d60c) a restart logs the dedupe keys of messages that were in
  # flight, taken back to be redelivered.
  local taken_back
  taken_back=$(jq -rR 'fromjson? // empty | (.fields // .) | select((.message // "") | startswith("The previous run stopped")) | .dedupe_keys // 0' \
    "$dir/run.log" 2>/dev/null | awk '{ s += $1; n++ } END { print (n ? s : "none logged") }')

  echo "   railyard stop on SIGTERM: $stopped; kills made: $done_kills of $kills; $(secs "$elapsed") s in all$gave_up"
  if [ "$name" = webhook ] && [ -s "$dir/sender.json" ]; then
    echo "   sender: $(jq -c '{accepted, gave_up, rejected, retried_events, retries, max_attempts, retry_causes}' "$dir/sender.json")"
  fi
  echo "   delivered $distinct/$n distinct ($total lines); missing $missing; duplicates $dups; unexpected ids $unexpected; torn lines $torn"
  echo "   the log: $dropped_dup dropped as a duplicate, $lost_as_dup of them missing from the output (dropped as a duplicate of themselves); lines mentioning dead letters: $dead_letters; in-flight dedupe keys taken back at restarts: $taken_back"
  if [ "$missing" -gt 0 ]; then
    echo "   missing ids (first 10): $(head -10 "$dir/missing.ids" | tr '\n' ' ')"
  fi
  if [ "$dups" -gt 0 ]; then
    echo "   duplicated ids (first 10): $(head -10 "$dir/duplicated.ids" | tr '\n' ' ')"
  fi
  summary+=("$(printf '%-8s %6s %12s %8s %11s %8s' "$name" "$done_kills/$kills" "$distinct/$n" "$missing" "$dups" "$(secs "$elapsed")")")
  if [ "$missing" -gt 0 ] || [ -n "$gave_up" ]; then failed=1; fi
  if [ -n "${CRASH_FAIL_ON_DUPLICATES:-}" ] && [ "$dups" -gt 0 ]; then failed=1; fi
  [ "$done_kills" -lt "$kills" ] && incomplete=1
  return 0
}

for s in $scenarios; do
  case $s in
    file) run_scenario file "$rows" ;;
    webhook) run_scenario webhook "$events" ;;
    *) echo "unknown scenario $s (file, webhook)" >&2; exit 2 ;;
  esac
done

echo
echo "binaries: $bin ($("$bin" --version 2>/dev/null || echo '?')), $load; seed $seed"
printf '%-8s %6s %12s %8s %11s %8s\n' scenario kills delivered missing duplicates seconds
for line in "${summary[@]}"; do echo "$line"; done
if [ "$incomplete" -ne 0 ]; then
  echo "WARNING: some kills were not made (the work finished first); lower CRASH_KILL_MAX_MS or raise the size" >&2
fi
if [ "$failed" -ne 0 ]; then
  echo "FAIL: messages missing after crashes${CRASH_FAIL_ON_DUPLICATES:+ (or duplicated)}" >&2
  exit 1
fi
echo "ok: nothing missing"
exit 0
}
