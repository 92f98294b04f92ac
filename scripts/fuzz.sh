#!/usr/bin/env bash
# libFuzzer targets for the parsers that read input from outside (Fuzz/<target>/: harness.swift,
# `sources` (the files compiled with it into one module), `modules` (modules it imports, built
# first with the same sanitizers), `seeds` (folders whose files start the corpus),
# `regressions/` (every input that once crashed, replayed first on every run)).
#   scripts/fuzz.sh --list             the targets
#   scripts/fuzz.sh TARGET SECONDS     build with -sanitize=fuzzer,address and fuzz for SECONDS
#   scripts/fuzz.sh --smoke [SECONDS]  every target for a few seconds (CI)
# Builds and corpora live in .build-fuzz/ (not in git). A crash, leak or timeout exits non-zero
# and leaves its input in .build-fuzz/TARGET/; copy it to Fuzz/TARGET/regressions/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
targets() { for d in Fuzz/*/; do [ -f "$d/harness.swift" ] && basename "$d"; done; }

modules=.build-fuzz/modules
module_sources() {  # the Swift files of a module the harnesses may import
  case $1 in
    # swift-crypto's BoringSSL is too large to rebuild with the sanitizers: a SHA-256 from OpenSSL.
    Crypto) echo Fuzz/modules/Crypto.swift ;;
    SwiftASN1) [ -d .build/checkouts/swift-asn1 ] || swift package resolve >/dev/null
               find .build/checkouts/swift-asn1/Sources/SwiftASN1 -name '*.swift' | sort ;;
    EmitContract) find Sources/EmitContract -name '*.swift' | sort ;;
    *) echo "no fuzz module $1" >&2; return 1 ;;
  esac
}
module_imports() { case $1 in EmitContract) echo Crypto ;; esac; }

build_module() {  # build_module NAME: a static library and its .swiftmodule, rebuilt when a source changed
  local name=$1 files=() stamp dependency listing
  for dependency in $(module_imports "$name"); do build_module "$dependency" || return 1; done
  listing=$(module_sources "$name") || return 1
  mapfile -t files <<< "$listing"  # some package folders have spaces in their names
  stamp=$(cat "${files[@]}" | sha256sum | cut -c1-16)
  [ -f "$modules/$name.stamp" ] && [ "$(cat "$modules/$name.stamp")" = "$stamp" ] && return 0
  mkdir -p "$modules"
  swiftc -emit-library -static -emit-module -parse-as-library -sanitize=fuzzer,address -O -I "$modules" \
    -module-name "$name" -emit-module-path "$modules/$name.swiftmodule" -o "$modules/lib$name.a" "${files[@]}" \
    2> >(grep -v "Cannot export local symbol" >&2) || { echo "fuzz: module $name does not build" >&2; return 1; }
  echo "$stamp" > "$modules/$name.stamp"
}

link_flags() {  # link_flags MODULE...: the libraries, dependencies after their users
  local name
  for name in "$@"; do
    echo "-l$name"
    for dependency in $(module_imports "$name"); do link_flags "$dependency"; done
  done
  for name in "$@"; do [ "$name" = Crypto ] && echo "-Xlinker -lcrypto"; done
  return 0
}

build() {  # build TARGET: the fuzzer binary's path
  local t=$1 out=.build-fuzz/$1
  mkdir -p "$out/corpus"
  local sources=() imports=() name
  while read -r line; do [ -n "$line" ] && sources+=("$line"); done < "Fuzz/$t/sources"
  if [ -f "Fuzz/$t/modules" ]; then
    while read -r name; do [ -n "$name" ] && imports+=("$name"); done < "Fuzz/$t/modules"
  fi
  for name in "${imports[@]}"; do build_module "$name" >&2 || return 1; done
  # shellcheck disable=SC2046
  swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name "Fuzz_$t" -I "$modules" -L "$modules" \
    "Fuzz/$t/harness.swift" "${sources[@]}" $(link_flags "${imports[@]}" | tac | awk '!seen[$0]++' | tac | tr '\n' ' ') \
    -o "$out/fuzz-$t" 2> >(grep -v "Cannot export local symbol" >&2) \
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
    SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan-suppressions.txt" "$binary" -runs=0 Fuzz/"$t"/regressions/* >/dev/null 2>&1 \
      || { echo "fuzz $t: a regression input crashes again" >&2; return 1; }
  fi
  # Leaks are findings (ASan's leak check); 5 s without an answer is a timeout.
  SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan-suppressions.txt" "$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
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
