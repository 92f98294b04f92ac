#!/usr/bin/env bash
# The node binary for deployment: the Swift runtime and every package linked in (it runs on any
# glibc Linux without the toolchain), not position-independent and exporting no symbols. The
# default static build is a PIE that exports its ~45,000 symbols: the dynamic loader then applies
# 3 MB of relocations and searches that symbol table at every start, and those pages stay
# resident (about 8 MiB of `emit run`'s RSS; BENCHMARKS.md). NVML still loads through dlopen.
# usage: scripts/build-node.sh   (prints the binary's path)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product emit --scratch-path .build-static \
  -Xlinker -no-pie -Xlinker --no-export-dynamic >&2
echo "$(pwd)/.build-static/release/emit"
