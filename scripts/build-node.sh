#!/usr/bin/env bash
# The node binary for deployment: the Swift runtime and every package linked in (it runs on any
# glibc Linux without the toolchain), not position-independent and exporting no symbols. The
# default static build is a PIE that exports its ~45,000 symbols: the dynamic loader then applies
# 3 MB of relocations and searches that symbol table at every start, and those pages stay
# resident (about 8 MiB of `emit run`'s RSS; BENCHMARKS.md). NVML still loads through dlopen.
# Every function in a section of its own, laid out by lld in the order of scripts/node-order.txt
# (the agent's steady state, from scripts/profile-node-order.sh): the code a long-running agent
# runs on lies together instead of a page here and there across 30 MB of text.
# usage: scripts/build-node.sh   (prints the binary's path)
set -euo pipefail
cd "$(dirname "$0")/.."
order=()
# SwiftPM relinks when sources change, not when the order does.
binary=.build-static/release/emit
[ -f scripts/node-order.txt ] && [ -e "$binary" ] && [ scripts/node-order.txt -nt "$binary" ] && rm -f "$(readlink -f "$binary")"
[ -f scripts/node-order.txt ] && order=(-Xlinker "--symbol-ordering-file=$(pwd)/scripts/node-order.txt" -Xlinker --no-warn-symbol-ordering)
swift build -c release --static-swift-stdlib --product emit --scratch-path .build-static \
  -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xswiftc -use-ld=lld \
  -Xlinker -no-pie -Xlinker --no-export-dynamic "${order[@]}" >&2
echo "$(pwd)/.build-static/release/emit"
