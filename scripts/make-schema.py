#!/usr/bin/env python3
"""Writes schema/emit-energy-event-v1.schema.json, the JSON Schema (draft 2020-12) of the v1
event: the SDK contract for other languages. It states everything a schema can; what it cannot
(event_id hashing, energy arithmetic, brand tokens, real calendar dates, valid_to > valid_from)
only `emit validate` checks."""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent

PHYSICAL_RUN = ["nvml", "dcgm", "rapl", "ipmi", "redfish", "pdu", "ups"]
PHYSICAL = PHYSICAL_RUN + ["smart_meter"]
RUN_CLASSES = ["gpu", "cpu_package", "dram", "cpu_core", "uncore", "psys", "node", "chassis", "outlet", "ups"]
FACILITY_CLASSES = ["pdu_inlet", "pdu_outlet", "ups", "utility_meter", "chassis", "node"]
FORBIDDEN = ["carbon", "co2", "co2e", "emission", "emissions", "cost", "costs", "price", "pricing", "billing", "bill",
             "invoice", "margin", "cogs", "attribution", "tariff", "revenue"]
TIMESTAMP = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z$"
NO_CONTROL = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"


def when(condition, then):
    return {"if": condition, "then": then}


def props(**kw):
    return {"properties": kw}


forbidden_token = "(^|[_.-])(" + "|".join(FORBIDDEN) + ")([_.-]|$)"

schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://emit.invalid/schema/emit-energy-event-v1.schema.json",
    "title": "emit:energy_meter_recorded, contract v1",
    "description": "One energy fact in joules with explicit provenance. Closed: members not named here are rejected. Rules a schema cannot state (event_id = SHA-256 of the RFC 8785 identity, energy arithmetic, brand tokens, calendar validity, valid_to after valid_from) are checked by `emit validate`.",
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "channel", "schema_version", "event_id", "grain", "energy_joules", "energy_provenance",
                 "energy_source", "valid_from", "valid_to", "recorded_at", "pue_applied", "producer"],
    "properties": {
        "kind": {"const": "emit:energy_meter_recorded"},
        "channel": {"const": "emit"},
        "schema_version": {"const": 1},
        "event_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "grain": {"enum": ["run", "facility"]},
        "energy_joules": {"type": "number", "minimum": 0},
        "energy_provenance": {"enum": ["measured", "modeled", "estimated"]},
        "energy_source": {"enum": PHYSICAL + ["token_model", "facility_proration"]},
        "valid_from": {"$ref": "#/$defs/timestamp"},
        "valid_to": {"$ref": "#/$defs/timestamp"},
        "recorded_at": {"$ref": "#/$defs/timestamp"},
        "pue_applied": {"type": "boolean"},
        "producer": {
            "type": "object", "additionalProperties": False, "required": ["name", "version"],
            "properties": {"name": {"type": "string", "minLength": 1}, "version": {"type": "string"},
                           "node_id": {"type": "string"}},
        },
        "device": {
            "type": "object", "additionalProperties": False, "required": ["class", "id"],
            "properties": {"class": {"enum": sorted(set(RUN_CLASSES + FACILITY_CLASSES))}, "id": {"type": "string", "minLength": 1},
                           "name": {"type": "string"}, "index": {"type": "integer", "minimum": 0}},
        },
        "labels": {
            "type": "object", "maxProperties": 32,
            "propertyNames": {"pattern": "^[a-z][a-z0-9_.-]{0,62}$", "not": {"pattern": forbidden_token}},
            "additionalProperties": {"type": "string", "maxLength": 256},
        },
        "compute_assignment_run_id": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": NO_CONTROL},
        "facility_id": {"type": "string", "minLength": 1, "maxLength": 256},
        "region": {"type": "string", "minLength": 1},
        "grid_region": {"type": "string", "minLength": 1},
        "measurement": {
            "type": "object", "additionalProperties": False,
            "required": ["method", "samples", "interval_ms", "coverage", "counter_wraps", "counter_resets"],
            "properties": {
                "method": {"enum": ["counter_delta", "power_integration"]},
                "samples": {"type": "integer", "minimum": 2},
                "interval_ms": {"type": "number", "exclusiveMinimum": 0},
                "coverage": {"type": "number", "minimum": 0, "maximum": 1},
                "counter_wraps": {"type": "integer", "minimum": 0},
                "counter_resets": {"type": "integer", "minimum": 0},
            },
        },
        "tokens": {
            "type": "object", "additionalProperties": False, "required": ["input", "output"],
            "properties": {"input": {"type": "integer", "minimum": 0}, "output": {"type": "integer", "minimum": 0}},
        },
        "coefficient": {
            "type": "object", "additionalProperties": False,
            "required": ["profile_id", "model_family", "model_tier", "joules_per_input_token", "joules_per_output_token",
                         "scope", "confidence", "citation"],
            "properties": {
                "profile_id": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*-v[0-9]+$"},
                "model_family": {"type": "string", "pattern": "\\S"},
                "model_tier": {"type": "string", "pattern": "\\S"},
                "joules_per_input_token": {"type": "number", "minimum": 0},
                "joules_per_output_token": {"type": "number", "minimum": 0},
                "scope": {"enum": ["accelerator", "system", "facility"]},
                "confidence": {"enum": ["low", "medium", "high"]},
                "citation": {"type": "string", "pattern": "\\S"},
            },
        },
        "proration": {
            "type": "object", "additionalProperties": False,
            "required": ["facility_id", "facility_event_id", "facility_energy_joules", "compute_share", "basis"],
            "properties": {
                "facility_id": {"type": "string", "minLength": 1, "maxLength": 256},
                "facility_event_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "facility_energy_joules": {"type": "number", "minimum": 0},
                "compute_share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "basis": {"enum": ["declared", "gpu_seconds", "cpu_seconds", "node_seconds", "it_energy"]},
            },
        },
    },
    "allOf": [
        # Tiers allowed per source.
        when(props(energy_source={"enum": PHYSICAL}), props(energy_provenance={"enum": ["measured", "estimated"]})),
        when(props(energy_source={"const": "token_model"}), props(energy_provenance={"const": "modeled"})),
        when(props(energy_source={"const": "facility_proration"}), props(energy_provenance={"const": "estimated"})),
        # Grains allowed per source.
        when(props(energy_source={"enum": ["nvml", "dcgm", "rapl", "token_model", "facility_proration"]}), props(grain={"const": "run"})),
        when(props(energy_source={"const": "smart_meter"}), props(grain={"const": "facility"})),
        # Run grain.
        when(props(grain={"const": "run"}), {
            "required": ["compute_assignment_run_id"],
            "properties": {"facility_id": False, "region": False, "grid_region": False,
                           "device": {"properties": {"class": {"enum": RUN_CLASSES}}}},
        }),
        when({"required": ["grain", "energy_source"], "properties": {"grain": {"const": "run"}, "energy_source": {"enum": PHYSICAL_RUN}}}, {
            "required": ["device"],
            "properties": {"producer": {"required": ["node_id"]}, "pue_applied": {"const": False}},
        }),
        when({"required": ["grain", "energy_provenance"], "properties": {"grain": {"const": "run"}, "energy_provenance": {"const": "measured"}}},
             {"required": ["measurement"]}),
        when({"required": ["grain"], "properties": {"grain": {"const": "run"}}}, {
            "if": {"required": ["energy_source"], "properties": {"energy_source": {"const": "token_model"}}},
            "then": {"required": ["tokens", "coefficient"]},
            "else": {"properties": {"tokens": False, "coefficient": False}},
        }),
        when({"required": ["grain"], "properties": {"grain": {"const": "run"}}}, {
            "if": {"required": ["energy_source"], "properties": {"energy_source": {"const": "facility_proration"}}},
            "then": {"required": ["proration"]},
            "else": {"properties": {"proration": False}},
        }),
        # pue_applied of modeled energy follows the coefficient's scope.
        when({"required": ["energy_source", "coefficient"], "properties": {"energy_source": {"const": "token_model"},
              "coefficient": {"required": ["scope"], "properties": {"scope": {"const": "facility"}}}}},
             props(pue_applied={"const": True})),
        when({"required": ["energy_source", "coefficient"], "properties": {"energy_source": {"const": "token_model"},
              "coefficient": {"required": ["scope"], "properties": {"scope": {"enum": ["accelerator", "system"]}}}}},
             props(pue_applied={"const": False})),
        # Facility grain.
        when({"required": ["grain"], "properties": {"grain": {"const": "facility"}}}, {
            "required": ["facility_id"],
            "anyOf": [{"required": ["region"]}, {"required": ["grid_region"]}],
            "properties": {"compute_assignment_run_id": False, "tokens": False, "coefficient": False, "proration": False,
                           "device": {"properties": {"class": {"enum": FACILITY_CLASSES}}}},
        }),
    ],
    "$defs": {"timestamp": {"type": "string", "pattern": TIMESTAMP,
                            "description": "RFC 3339 in UTC ending in Z with 0-9 fraction digits"}},
}

dest = ROOT / "schema" / "emit-energy-event-v1.schema.json"
dest.parent.mkdir(exist_ok=True)
dest.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
print(f"wrote {dest.relative_to(ROOT)}")
