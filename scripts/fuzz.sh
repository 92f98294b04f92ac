#!/usr/bin/env bash
# libFuzzer targets for the parsers that read input from outside (Fuzz/<target>/: harness.swift,
# `sources` (the files compiled with it into one module), `seeds` (folders whose files start
# the corpus), `regressions/` (every input that once crashed, replayed first on every run)).
#   scripts/fuzz.sh --list             the targets
#   scripts/fuzz.sh TARGET SECONDS     build with -sanitize=fuzzer,address and fuzz for SECONDS
#   scripts/fuzz.sh --smoke [SECONDS]  every target for a few seconds (CI)
# Builds and corpora live in .build-fuzz/ (not in git). A crash, leak or timeout exits non-zero
# and leaves its input in .build-fuzz/TARGET/; copy it to Fuzz/TARGET/regressions/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
targets() { for d in Fuzz/*/; do [ -f "$d/harness.swift" ] && basename "$d"; done; }

build() {  # build TARGET: the fuzzer binary's path
  local t=$1 out=.build-fuzz/$1
  mkdir -p "$out/corpus"
  local sources=()
  while read -r line; do [ -n "$line" ] && sources+=("$line"); done < "Fuzz/$t/sources"
  swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name "Fuzz_$t" \
    "Fuzz/$t/harness.swift" "${sources[@]}" -o "$out/fuzz-$t" 2> >(grep -v "Cannot export local symbol" >&2) \
    || { echo "fuzz $t: the harness does not build" >&2; return 1; }
  while read -r folder; do
    [ -n "$folder" ] && [ -d "$folder" ] && find "$folder" -maxdepth 1 -type f -exec cp -n {} "$out/corpus/" \;
  done < "Fuzz/$t/seeds"
  echo "$out/fuzz-$t"
}

run() {  # run TARGET SECONDS
  local t=$1 seconds=$2 binary
  binary=$(build "$t") || return 1
  # Inputs that once crashed must not crash again.
  if compgen -G "Fuzz/$t/regressions/*" >/dev/null; then
    SWIFT_BACKTRACE=enable=no "$binary" -runs=0 Fuzz/"$t"/regressions/* >/dev/null 2>&1 \
      || { echo "fuzz $t: a regression input crashes again" >&2; return 1; }
  fi
  # Leaks are findings (ASan's leak check); 5 s without an answer is a timeout.
  SWIFT_BACKTRACE=enable=no "$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix=".build-fuzz/$t/" ".build-fuzz/$t/corpus" > ".build-fuzz/$t/last-run.log" 2>&1 \
    || { tail -30 ".build-fuzz/$t/last-run.log" >&2; echo "fuzz $t: finding (input in .build-fuzz/$t/)" >&2; return 1; }
  echo "fuzz $t: $(grep -o 'number_of_executed_units: [0-9]*' ".build-fuzz/$t/last-run.log" | cut -d' ' -f2) executions in ${seconds} s, 0 crashes, 0 leaks, 0 timeouts"
}

case "${1:-}" in
  --list) targets ;;
  --smoke) for t in $(targets); do run "$t" "${2:-5}"; done ;;
  ""|-h|--help) sed -n '2,9p' "$0" ;;
  *) [ -f "Fuzz/$1/harness.swift" ] || { echo "no fuzz target $1 (scripts/fuzz.sh --list)" >&2; exit 2; }
     run "$1" "${2:-60}" ;;
esac
