#!/usr/bin/env bash
# Bounded fuzz run of the proptest harnesses for Railyard's untrusted inputs (templates,
# webhook requests, JSON intake): each harness runs with PROPTEST_CASES=<cases> under a time
# bound, and the script prints cases, seconds and the result per harness. See README.md.
#
# Usage: benches/fuzz/run.sh [cases]
#   cases                  cases per harness (default 20000); `cargo test` alone runs 64-256
#   FUZZ_TIMEOUT=900       seconds each harness may take before it is stopped (a failure)
#   CARGO_TARGET_DIR       as for cargo (the test binaries are built once, up front)
#
# Exit 0 when every harness passed within its bound, 1 otherwise, 2 when the build failed.

set -u -o pipefail

cases=${1:-20000}
bound=${FUZZ_TIMEOUT:-900}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2

# package, test file, test name
harnesses=(
  "railyard-core json_fuzz fuzz_deep_nesting_is_refused_without_overflow"
  "railyard-core json_fuzz fuzz_near_json_is_read_as_serde_json_reads_it_or_refused"
  "railyard-core json_fuzz fuzz_taken_payloads_round_trip"
  "railyard-core json_fuzz fuzz_valid_text_is_taken_or_refused_for_a_reason"
  "railyard-core template_fuzz fuzz_every_template_value_goes_through_its_placement"
  "railyard-core template_fuzz fuzz_any_template_text_renders_or_is_refused"
  "railyard-connectors template_fuzz fuzz_rendered_urls_keep_their_endpoint"
  "railyard-connectors template_fuzz fuzz_rendered_paths_stay_in_their_directory"
  "railyard-connectors template_fuzz fuzz_text_past_the_authority_cannot_change_it"
  "railyard-connectors webhook_fuzz fuzz_webhook_requests_are_answered_as_the_checks_say"
)

echo "building the harnesses ..."
for pkg in railyard-core railyard-connectors; do
  tests=()
  for h in "${harnesses[@]}"; do
    read -r p t _ <<<"$h"
    [[ $p == "$pkg" && ! " ${tests[*]} " == *" --test $t "* ]] && tests+=(--test "$t")
  done
  out=$(cargo test -q -p "$pkg" "${tests[@]}" --no-run 2>&1) || { echo "$out"; echo "build failed: $pkg"; exit 2; }
done

since() { awk -v now="$(date +%s.%N)" -v t="$1" 'BEGIN { printf "%.1f", now - t }'; }

log=$(mktemp -d)
failed=0
total_start=$(date +%s.%N)
printf '%-76s %6s %8s  %s\n' harness cases seconds result
for h in "${harnesses[@]}"; do
  read -r pkg test name <<<"$h"
  start=$(date +%s.%N)
  PROPTEST_CASES=$cases timeout "$bound" \
    cargo test -q -p "$pkg" --test "$test" -- --exact "$name" >"$log/$name.log" 2>&1
  rc=$?
  secs=$(since "$start")
  case $rc in
    0) result=ok ;;
    124) result="TIMEOUT after ${bound}s"; failed=1 ;;
    *) result="FAILED (log: $log/$name.log)"; failed=1 ;;
  esac
  printf '%-76s %6s %8.1f  %s\n' "$test::$name" "$cases" "$secs" "$result"
  if [[ $rc -ne 0 && $rc -ne 124 ]]; then
    grep -E 'Test failed|minimal failing input' -A6 "$log/$name.log" | head -20 | sed 's/^/    /'
  fi
done
printf 'total %.1f s, %s harnesses x %s cases\n' "$(since "$total_start")" "${#harnesses[@]}" "$cases"
exit $failed
