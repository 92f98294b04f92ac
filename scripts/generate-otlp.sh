#!/usr/bin/env bash
# Regenerates Sources/EmitOTLP/Generated/ (committed: CI never runs protoc). Needs protoc
# (Debian protobuf-compiler), the PyPI package opentelemetry-proto (its modules carry the
# .proto descriptors of the OTLP version they implement) and protoc-gen-swift built from the
# swift-protobuf release Package.swift names:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0 &&
#   swift build -c release --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=.../swift-protobuf/.build/release/protoc-gen-swift scripts/generate-otlp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:?set PROTOC_GEN_SWIFT to a built protoc-gen-swift}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/otlp.desc" <<'PY'
import sys
from google.protobuf import descriptor_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
files, seen = descriptor_pb2.FileDescriptorSet(), set()
def add(fd):
    if fd.name in seen: return
    for dependency in fd.dependencies: add(dependency)
    seen.add(fd.name)
    proto = descriptor_pb2.FileDescriptorProto(); fd.CopyToProto(proto); files.file.append(proto)
add(logs_service_pb2.DESCRIPTOR); add(metrics_service_pb2.DESCRIPTOR)
open(sys.argv[1], "wb").write(files.SerializeToString())
PY
mkdir -p "$work/google/rpc"
# google.rpc.Status, the error body of OTLP/HTTP: only the two fields emit reads.
printf 'syntax = "proto3";\npackage google.rpc;\nmessage Status {\n  int32 code = 1;\n  string message = 2;\n}\n' > "$work/google/rpc/status.proto"
out=Sources/EmitOTLP/Generated
rm -f "$out"/*.pb.swift
options=(--plugin=protoc-gen-swift="$plugin" --swift_out="$out" --swift_opt=FileNaming=DropPath --swift_opt=Visibility=Internal)
protoc --descriptor_set_in="$work/otlp.desc" "${options[@]}" \
  opentelemetry/proto/common/v1/common.proto opentelemetry/proto/resource/v1/resource.proto \
  opentelemetry/proto/logs/v1/logs.proto opentelemetry/proto/collector/logs/v1/logs_service.proto \
  opentelemetry/proto/metrics/v1/metrics.proto opentelemetry/proto/collector/metrics/v1/metrics_service.proto
protoc -I"$work" "${options[@]}" google/rpc/status.proto
ls "$out"
