#!/usr/bin/env python3
"""Writes fixtures/conformance/ and examples/.

This is a second, independent implementation of the identity rule (RFC 8785 over the identity
members, SHA-256): the Swift validator must agree with every event_id written here, so the
fixtures cross-check the canonicalization. For the identity object (ASCII member names, string
values) RFC 8785 equals json.dumps with sorted keys, no whitespace and ensure_ascii=False.

Invalid fixtures are a valid base event with one mutation, each with a NAME.expect.json sidecar:
{"codes": [...], "schema": "reject" | "accept" | "unparsed"} where "schema" says whether the
JSON Schema alone rejects the instance, cannot see the violation, or never gets a JSON instance.
"""
import copy
import hashlib
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "conformance"
EXAMPLES = ROOT / "examples"
COEFFICIENTS = {p["profile_id"]: p for p in json.loads((ROOT / "coefficients/coefficients.json").read_text())["profiles"]}

IDENTITY = ["kind", "grain", "energy_source", "compute_assignment_run_id", "facility_id", "valid_from", "valid_to"]


def event_id(event):
    identity = {k: event[k] for k in IDENTITY if k in event}
    if "node_id" in event.get("producer", {}):
        identity["node_id"] = event["producer"]["node_id"]
    if "device" in event and "id" in event["device"]:
        identity["device_id"] = event["device"]["id"]
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def finish(event):
    event["event_id"] = event_id(event)
    return event


def base(grain, source, tier, energy, start="2026-11-27T09:00:00Z", end="2026-11-27T09:15:00Z"):
    return {
        "kind": "emit:energy_meter_recorded", "channel": "emit", "schema_version": 1, "event_id": "",
        "grain": grain, "energy_joules": energy, "energy_provenance": tier, "energy_source": source,
        "valid_from": start, "valid_to": end, "recorded_at": "2026-11-27T09:15:00.412Z", "pue_applied": False,
        "producer": {"name": "emit", "version": "0.1.0"},
    }


def measured_run(source, device, energy, method="counter_delta", samples=901, interval=1000, coverage=1.0, wraps=0, resets=0, run="asg-7f3c/run-0042"):
    e = base("run", source, "measured", energy)
    e["compute_assignment_run_id"] = run
    e["producer"]["node_id"] = "node-a17"
    e["device"] = device
    e["measurement"] = {"method": method, "samples": samples, "interval_ms": interval, "coverage": coverage,
                        "counter_wraps": wraps, "counter_resets": resets}
    return finish(e)


def token(profile, inp, out, run="asg-7f3c/run-0043"):
    c = COEFFICIENTS[profile]
    e = base("run", "token_model", "modeled", inp * c["joules_per_input_token"] + out * c["joules_per_output_token"])
    e["compute_assignment_run_id"] = run
    e["tokens"] = {"input": inp, "output": out}
    e["coefficient"] = dict(c)
    e["pue_applied"] = c["scope"] == "facility"
    return finish(e)


def facility(source, cls, meter, energy, pue, tier="measured", region=None, grid=None):
    e = base("facility", source, tier, energy, "2026-11-27T09:00:00Z", "2026-11-27T10:00:00Z")
    e["facility_id"] = "campus-north/hall-2"
    if region: e["region"] = region
    if grid: e["grid_region"] = grid
    e["pue_applied"] = pue
    e["device"] = {"class": cls, "id": meter}
    return finish(e)


def proration(fac, share, basis="gpu_seconds", run="asg-7f3c/run-0042"):
    e = base("run", "facility_proration", "estimated", fac["energy_joules"] * share, fac["valid_from"], fac["valid_to"])
    e["compute_assignment_run_id"] = run
    e["pue_applied"] = fac["pue_applied"]
    e["proration"] = {"facility_id": fac["facility_id"], "facility_event_id": fac["event_id"],
                      "facility_energy_joules": fac["energy_joules"], "compute_share": share, "basis": basis}
    return finish(e)


GPU0 = {"class": "gpu", "id": "GPU-5d3f0c1e-8a2b-4c6d-9e0f-1a2b3c4d5e6f", "name": "NVIDIA H100 80GB HBM3", "index": 0}
GPU1 = {"class": "gpu", "id": "GPU-0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", "name": "NVIDIA H100 80GB HBM3", "index": 1}

pdu_raw = facility("pdu", "pdu_inlet", "pdu-r12-a/inlet-1", 41_400_000.0, False, region="eu-central", grid="DE-LU")

VALID = {
    "gpu-nvml": measured_run("nvml", GPU0, 412_733.125),
    "gpu-dcgm": measured_run("dcgm", GPU1, 398_120.5, samples=91, interval=10000),
    "cpu-package-rapl": measured_run("rapl", {"class": "cpu_package", "id": "package-0", "index": 0}, 143_210.75, wraps=1),
    "dram-rapl": measured_run("rapl", {"class": "dram", "id": "package-0/dram"}, 21_877.0),
    "node-ipmi": measured_run("ipmi", {"class": "node", "id": "bmc"}, 1_102_500, method="power_integration", samples=181, interval=5000, coverage=0.994),
    "node-redfish": measured_run("redfish", {"class": "chassis", "id": "/redfish/v1/Chassis/1U"}, 1_098_000, coverage=1),
    "token-accelerator": token("managed-small-v1", 1850, 420),
    "token-system": token("managed-balanced-v1", 1850, 420),
    "token-facility": token("managed-large-v1", 1850, 420),
    "facility-pdu-raw-it": pdu_raw,
    "facility-pdu-pue-applied": facility("pdu", "pdu_inlet", "pdu-r12-b/inlet-1", 45_126_000.0, True, region="eu-central"),
    "facility-smart-meter-raw-it": facility("smart_meter", "utility_meter", "meter-8812", 180_000_000.0, False, grid="DE-LU"),
    "facility-smart-meter-pue-applied": facility("smart_meter", "utility_meter", "meter-8813", 196_200_000.0, True, tier="estimated", grid="DE-LU"),
    "proration": proration(pdu_raw, 0.125),
    # Identity canonicalization across Unicode: non-ASCII, an astral character, quotes,
    # backslashes and control characters in the exact strings that the event id hashes.
    "identity-unicode": measured_run("nvml", {"class": "gpu", "id": "gpu\t0\u001f\u007f", "index": 0}, 10.0,
                                     run="run-\u00fc\u00df-\u65e5\u672c-\U0001F600-\"q\"-\\back\\-\u2028"),
}


def mutate(event, change, rehash=True):
    e = copy.deepcopy(event)
    change(e)
    return finish(e) if rehash else e


nvml = VALID["gpu-nvml"]
tok = VALID["token-system"]
tok_fac = VALID["token-facility"]
pro = VALID["proration"]


def setter(path, value):
    def change(e):
        target = e
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def deleter(*path):
    def change(e):
        target = e
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


def brand_escaped_line(event, field_path, text_with_escape):
    """The brand_name fixture keeps the brand out of the file's text by a JSON \\u escape:
    the file stays provider-brand-free while the decoded value carries the token."""
    line = json.dumps(event, ensure_ascii=False)
    return line.replace(json.dumps(field_path), text_with_escape, 1)


INVALID = {
    # name: (line text or event, codes, schema)
    "invalid-json-duplicate-member": ('{"kind":"emit:energy_meter_recorded","kind":"emit:energy_meter_recorded"}', ["invalid_json"], "unparsed"),
    "invalid-json-nan": (json.dumps(nvml).replace('"energy_joules": 412733.125', '"energy_joules": NaN'), ["invalid_json"], "unparsed"),
    "invalid-json-trailing-garbage": (json.dumps(nvml) + " }", ["invalid_json"], "unparsed"),
    "invalid-json-not-an-object": ("[" + json.dumps(nvml) + "]", ["invalid_json"], "unparsed"),
    "missing-field-recorded-at": (mutate(nvml, deleter("recorded_at")), ["missing_field"], "reject"),
    "missing-run-id": (mutate(nvml, deleter("compute_assignment_run_id")), ["missing_run_id"], "reject"),
    "missing-run-id-control-character": (mutate(nvml, setter(["compute_assignment_run_id"], "run\u00070042")), ["missing_run_id"], "reject"),
    "unknown-field-top-level": (mutate(nvml, setter(["carbon_grams"], 12.5)), ["unknown_field"], "reject"),
    "unknown-field-nested": (mutate(nvml, setter(["measurement", "price_per_joule"], 0.1)), ["unknown_field"], "reject"),
    "wrong-type-boolean-energy": (mutate(nvml, setter(["energy_joules"], True)), ["wrong_type"], "reject"),
    "wrong-type-fractional-integer": (mutate(nvml, setter(["measurement", "samples"], 2.5)), ["wrong_type"], "reject"),
    "bad-kind": (mutate(nvml, setter(["kind"], "emit:power_sampled"), rehash=False), ["bad_kind"], "reject"),
    "bad-channel": (mutate(nvml, setter(["channel"], "telemetry")), ["bad_channel"], "reject"),
    "bad-schema-version": (mutate(nvml, setter(["schema_version"], 2)), ["bad_schema_version"], "reject"),
    "bad-grain": (mutate(nvml, setter(["grain"], "rack")), ["bad_grain"], "reject"),
    "bad-source": (mutate(nvml, setter(["energy_source"], "thermometer")), ["bad_source"], "reject"),
    "bad-provenance": (mutate(nvml, setter(["energy_provenance"], "guessed")), ["bad_provenance"], "reject"),
    "tier-source-mismatch": (mutate(nvml, setter(["energy_provenance"], "modeled")), ["tier_source_mismatch"], "reject"),
    "grain-source-mismatch": (mutate(nvml, setter(["energy_source"], "smart_meter")), ["grain_source_mismatch"], "reject"),
    "bad-energy-negative": (mutate(nvml, setter(["energy_joules"], -5)), ["bad_energy"], "reject"),
    "bad-timestamp-format": (mutate(nvml, setter(["valid_from"], "2026-11-27 09:00:00")), ["bad_timestamp"], "reject"),
    "bad-timestamp-offset": (mutate(nvml, setter(["valid_to"], "2026-11-27T10:15:00+01:00")), ["bad_timestamp"], "reject"),
    "bad-timestamp-no-such-day": (mutate(nvml, setter(["recorded_at"], "2026-02-30T00:00:00Z")), ["bad_timestamp"], "accept"),
    "bad-window-empty": (mutate(nvml, setter(["valid_to"], nvml["valid_from"])), ["bad_window"], "accept"),
    "facility-fields-no-region": (mutate(pdu_raw, lambda e: (e.pop("region"), e.pop("grid_region"))), ["facility_fields"], "reject"),
    "facility-fields-run-member": (mutate(pdu_raw, setter(["compute_assignment_run_id"], "run-1")), ["facility_fields"], "reject"),
    "facility-fields-on-run": (mutate(nvml, setter(["region"], "eu-central")), ["facility_fields"], "reject"),
    "bad-device-missing": (mutate(nvml, deleter("device")), ["bad_device"], "reject"),
    "bad-device-class-for-grain": (mutate(nvml, setter(["device", "class"], "utility_meter")), ["bad_device"], "reject"),
    "bad-device-negative-index": (mutate(nvml, setter(["device", "index"], -1)), ["bad_device"], "reject"),
    "bad-measurement-missing": (mutate(nvml, deleter("measurement")), ["bad_measurement"], "reject"),
    "bad-measurement-coverage": (mutate(nvml, setter(["measurement", "coverage"], 1.5)), ["bad_measurement"], "reject"),
    "bad-measurement-one-sample": (mutate(nvml, setter(["measurement", "samples"], 1)), ["bad_measurement"], "reject"),
    "bad-tokens-negative": (mutate(tok, setter(["tokens", "input"], -3)), ["bad_tokens"], "reject"),
    "bad-coefficient-profile-id": (mutate(tok, setter(["coefficient", "profile_id"], "Managed Balanced")), ["bad_coefficient"], "reject"),
    "bad-coefficient-empty-citation": (mutate(tok, setter(["coefficient", "citation"], "")), ["bad_coefficient"], "reject"),
    "energy-mismatch-tokens": (mutate(tok, setter(["energy_joules"], tok["energy_joules"] + 1)), ["energy_mismatch"], "accept"),
    "energy-mismatch-proration": (mutate(pro, setter(["energy_joules"], pro["energy_joules"] * 2)), ["energy_mismatch"], "accept"),
    "bad-proration-share": (mutate(pro, setter(["proration", "compute_share"], 1.5)), ["bad_proration"], "reject"),
    "pue-mismatch-physical": (mutate(nvml, setter(["pue_applied"], True)), ["pue_mismatch"], "reject"),
    "pue-mismatch-token-facility-scope": (mutate(tok_fac, setter(["pue_applied"], False)), ["pue_mismatch"], "reject"),
    "brand-name-producer": (brand_escaped_line(mutate(nvml, setter(["producer", "name"], "BRAND-exporter")), "BRAND-exporter", '"\\u0067pt-exporter"'), ["brand_name"], "accept"),
    "bad-label-key": (mutate(nvml, setter(["labels"], {"Team": "vision"})), ["bad_label"], "reject"),
    "forbidden-label": (mutate(nvml, setter(["labels"], {"carbon_team": "vision"})), ["forbidden_label"], "reject"),
    "event-id-mismatch": (mutate(nvml, setter(["event_id"], "0" * 64), rehash=False), ["event_id_mismatch"], "accept"),
    "event-id-uppercase": (mutate(nvml, setter(["event_id"], nvml["event_id"].upper()), rehash=False), ["event_id_mismatch"], "reject"),
}


def write_json(path, value):
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "valid").mkdir(parents=True)
    (OUT / "invalid").mkdir(parents=True)
    for name, event in VALID.items():
        write_json(OUT / "valid" / f"{name}.json", event)
    for name, (line, codes, schema) in INVALID.items():
        text = line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)
        (OUT / "invalid" / f"{name}.jsonl").write_text(text + "\n", encoding="utf-8")
        write_json(OUT / "invalid" / f"{name}.expect.json", {"codes": codes, "schema": schema})

    EXAMPLES.mkdir(exist_ok=True)
    # A realistic run: two GPUs, both packages, DRAM, on one node, plus the modeled tokens of a
    # proxied call in the same assignment.
    run = [
        VALID["gpu-nvml"],
        measured_run("nvml", GPU1, 398_004.875),
        VALID["cpu-package-rapl"],
        measured_run("rapl", {"class": "cpu_package", "id": "package-1", "index": 1}, 139_882.5),
        VALID["dram-rapl"],
        measured_run("rapl", {"class": "dram", "id": "package-1/dram"}, 20_911.25),
    ]
    (EXAMPLES / "run-node-a17.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in run), encoding="utf-8")
    write_json(EXAMPLES / "modeled-token-run.json", VALID["token-system"])
    facility_day = [facility("pdu", "pdu_inlet", "pdu-r12-a/inlet-1", 41_400_000.0 + i * 125_000, False, region="eu-central", grid="DE-LU") for i in range(1)]
    (EXAMPLES / "facility-hall-2.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in facility_day + [VALID["facility-smart-meter-raw-it"], VALID["proration"]]),
        encoding="utf-8")
    print(f"wrote {len(VALID)} valid and {len(INVALID)} invalid fixtures, and examples/")


main()
