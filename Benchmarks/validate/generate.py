#!/usr/bin/env python3
"""Generates N mixed valid events as JSON Lines: measured GPU/CPU/DRAM/node, modeled tokens,
facility windows and prorations, every one with a correct event_id. Deterministic (seeded).
usage: generate.py N OUT.jsonl"""
import datetime
import hashlib
import json
import random
import sys

KIND = "emit:energy_meter_recorded"
COEFFICIENT = {"profile_id": "managed-balanced-v1", "model_family": "general-text", "model_tier": "balanced",
               "joules_per_input_token": 0.066, "joules_per_output_token": 0.33, "scope": "system",
               "confidence": "medium", "citation": "Chung et al. 2025, arXiv:2505.06371"}


def ident(e):
    i = {k: e[k] for k in ("kind", "grain", "energy_source", "compute_assignment_run_id", "facility_id", "valid_from", "valid_to") if k in e}
    if "node_id" in e["producer"]:
        i["node_id"] = e["producer"]["node_id"]
    if "device" in e:
        i["device_id"] = e["device"]["id"]
    c = json.dumps(i, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(c.encode()).hexdigest()


EPOCH = datetime.datetime(2026, 1, 1)


def ts(seconds):
    t = EPOCH + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{seconds % 1000:03d}Z"


def event(n, rng):
    start = n * 7
    e = {"kind": KIND, "channel": "emit", "schema_version": 1, "event_id": "", "grain": "run",
         "energy_joules": 0.0, "energy_provenance": "measured", "energy_source": "nvml",
         "valid_from": ts(start), "valid_to": ts(start + 60), "recorded_at": ts(start + 61), "pue_applied": False,
         "producer": {"name": "emit", "version": "0.1.0", "node_id": f"node-{n % 512}"}}
    kind = n % 10
    if kind < 4:
        e["energy_source"] = "nvml" if kind < 3 else "dcgm"
        e["compute_assignment_run_id"] = f"asg-{n // 16}/run-{n % 16}"
        e["device"] = {"class": "gpu", "id": f"GPU-{n % 8:08x}-1111-2222-3333-{n % 4096:012x}", "name": "Accelerator 80GB", "index": n % 8}
        e["energy_joules"] = round(rng.uniform(1000, 50000), 3)
        e["measurement"] = {"method": "counter_delta", "samples": 601, "interval_ms": 100, "coverage": 1, "counter_wraps": 0, "counter_resets": 0}
        e["labels"] = {"team": "vision", "queue": "batch"}
    elif kind < 7:
        e["energy_source"] = "rapl"
        e["compute_assignment_run_id"] = f"asg-{n // 16}/run-{n % 16}"
        pkg = n % 2
        e["device"] = {"class": "dram", "id": f"package-{pkg}/dram"} if kind == 6 else {"class": "cpu_package", "id": f"package-{pkg}", "index": pkg}
        e["energy_joules"] = round(rng.uniform(100, 9000), 6)
        e["measurement"] = {"method": "counter_delta", "samples": 61, "interval_ms": 1000, "coverage": 0.998, "counter_wraps": n % 2, "counter_resets": 0}
    elif kind == 7:
        e["energy_source"] = "token_model"
        e["energy_provenance"] = "modeled"
        e["compute_assignment_run_id"] = f"asg-{n // 16}/run-{n % 16}"
        del e["producer"]["node_id"]
        tin, tout = rng.randrange(0, 20000), rng.randrange(0, 4000)
        e["tokens"] = {"input": tin, "output": tout}
        e["coefficient"] = COEFFICIENT
        e["energy_joules"] = tin * 0.066 + tout * 0.33
    elif kind == 8:
        e["grain"] = "facility"
        e["energy_source"] = "pdu"
        e["facility_id"] = f"campus-{n % 3}/hall-{n % 5}"
        e["region"] = "eu-central"
        e["grid_region"] = "DE-LU"
        e["pue_applied"] = bool(n % 2)
        del e["producer"]["node_id"]
        e["device"] = {"class": "pdu_inlet", "id": f"pdu-{n % 40}/inlet-{n % 2}"}
        e["energy_joules"] = round(rng.uniform(1e5, 1e7), 1)
    else:
        e["energy_source"] = "facility_proration"
        e["energy_provenance"] = "estimated"
        e["compute_assignment_run_id"] = f"asg-{n // 16}/run-{n % 16}"
        del e["producer"]["node_id"]
        fe = round(rng.uniform(1e5, 1e7), 1)
        share = rng.choice([0.5, 0.25, 0.125, 0.0625])
        e["proration"] = {"facility_id": "campus-1/hall-2", "facility_event_id": hashlib.sha256(str(n).encode()).hexdigest(),
                          "facility_energy_joules": fe, "compute_share": share, "basis": "gpu_seconds"}
        e["energy_joules"] = fe * share
    e["event_id"] = ident(e)
    return e


def main():
    count, out = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(42)
    with open(out, "w", encoding="utf-8") as f:
        for n in range(count):
            f.write(json.dumps(event(n, rng), separators=(",", ":")) + "\n")


main()
