#!/usr/bin/env python3
"""An OTLP/HTTP sink for delivery tests, on 127.0.0.1 only: it decodes every request with the
official opentelemetry-proto package (a second reading of what emit encodes, beside a real
collector) and writes what it understood as JSON Lines.

usage: otlp_sink.py PORT OUT [--reject-source SOURCE] [--require-header NAME=VALUE] [--status CODE]

POST /v1/logs: one line per log record: {"encoding", "gzip", "resource", "scope", "event_name",
"time_unix_nano", "observed_time_unix_nano", "attributes", "body"}, the body and attributes as
plain JSON (doubleValue as a number, kvlistValue as an object, an empty value as null).
--reject-source refuses the records whose emit.energy_source is SOURCE, as a collector with a
validating processor would: they are not written and the answer is a partial success.
POST /v1/metrics: one line per data point: {"resource", "name", "unit", "description",
"temporality", "monotonic", "attributes", "start_time_unix_nano", "time_unix_nano", "value"}.
--status answers every request with that status (a google.rpc.Status body). Prints "ready"."""
import gzip
import http.server
import json
import os
import sys
import threading

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

port, out = int(sys.argv[1]), sys.argv[2]
options = dict(zip(sys.argv[3::2], sys.argv[4::2]))
reject_source = options.get("--reject-source")
required = options.get("--require-header")
forced_status = int(options["--status"]) if "--status" in options else None
lock = threading.Lock()


def plain(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "array_value":
        return [plain(v) for v in any_value.array_value.values]
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind)


def attributes(pairs):
    return {kv.key: plain(kv.value) for kv in pairs}


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, message, encoding):
        if encoding == "json":
            body = json_format.MessageToJson(message).encode() if message is not None else b"{}"
            content_type = "application/json"
        else:
            body = message.SerializeToString() if message is not None else b""
            content_type = "application/x-protobuf"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        zipped = (self.headers.get("Content-Encoding") or "").lower() == "gzip"
        if zipped:
            raw = gzip.decompress(raw)
        encoding = "json" if (self.headers.get("Content-Type") or "").startswith("application/json") else "protobuf"
        if required:
            name, value = required.split("=", 1)
            if self.headers.get(name) != value:
                return self.answer(401, None, encoding)
        if forced_status is not None:
            return self.refuse(forced_status, "refused by the test sink", encoding)
        if self.path == "/v1/logs":
            return self.logs(raw, encoding, zipped)
        if self.path == "/v1/metrics":
            return self.metrics(raw, encoding, zipped)
        self.answer(404, None, encoding)

    def refuse(self, status, text, encoding):
        # google.rpc.Status {code = 1 (varint), message = 2 (string)}, written by hand: the
        # googleapis package is not needed for two fields.
        if encoding == "json":
            body, content_type = json.dumps({"code": 3, "message": text}).encode(), "application/json"
        else:
            data = text.encode()
            body, content_type = bytes([0x08, 3, 0x12, len(data)]) + data, "application/x-protobuf"
        self.send_response(status)
        if status in (429, 503):
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def parse(self, message, raw, encoding):
        if encoding == "json":
            json_format.Parse(raw.decode(), message)
        else:
            message.ParseFromString(raw)
        return message

    def logs(self, raw, encoding, zipped):
        request = self.parse(logs_service_pb2.ExportLogsServiceRequest(), raw, encoding)
        lines, rejected = [], 0
        for resource_logs in request.resource_logs:
            resource = attributes(resource_logs.resource.attributes)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    attrs = attributes(record.attributes)
                    if reject_source and attrs.get("emit.energy_source") == reject_source:
                        rejected += 1
                        continue
                    lines.append({
                        "encoding": encoding, "gzip": zipped, "resource": resource,
                        "scope": {"name": scope_logs.scope.name, "version": scope_logs.scope.version},
                        "event_name": record.event_name, "time_unix_nano": record.time_unix_nano,
                        "observed_time_unix_nano": record.observed_time_unix_nano,
                        "attributes": attrs, "body": plain(record.body)})
        self.write(lines)
        response = logs_service_pb2.ExportLogsServiceResponse()
        if rejected:
            response.partial_success.rejected_log_records = rejected
            response.partial_success.error_message = f"energy_source {reject_source} is not accepted here"
        self.answer(200, response, encoding)

    def metrics(self, raw, encoding, zipped):
        request = self.parse(metrics_service_pb2.ExportMetricsServiceRequest(), raw, encoding)
        lines = []
        for resource_metrics in request.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.WhichOneof("data") != "sum":
                        lines.append({"name": metric.name, "kind": metric.WhichOneof("data")})
                        continue
                    for point in metric.sum.data_points:
                        lines.append({
                            "gzip": zipped, "resource": resource, "name": metric.name, "unit": metric.unit, "description": metric.description,
                            "temporality": metric.sum.aggregation_temporality, "monotonic": metric.sum.is_monotonic,
                            "attributes": attributes(point.attributes), "start_time_unix_nano": point.start_time_unix_nano,
                            "time_unix_nano": point.time_unix_nano,
                            "value": point.as_double if point.WhichOneof("value") == "as_double" else point.as_int})
        self.write(lines)
        self.answer(200, metrics_service_pb2.ExportMetricsServiceResponse(), encoding)

    def write(self, lines):
        # One write(2) per request: a sink killed mid-request (a test does) leaves whole lines,
        # where a buffered file flushed in pieces left half a line for the next sink to append to.
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        with lock:
            fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                while data:  # a short write goes on (a regular file takes it whole)
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink)
print("ready", flush=True)
server.serve_forever()
