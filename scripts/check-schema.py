#!/usr/bin/env python3
"""Checks schema/ against fixtures/conformance/: every valid fixture passes the JSON Schema,
every invalid fixture declared "schema": "reject" fails it, and every one declared "accept"
passes it (the violation is one only `emit validate` can see). Exit 0 on agreement."""
import json
import pathlib
import sys

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent
schema = json.loads((ROOT / "schema/emit-energy-event-v1.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)

problems = []
checked = 0
for path in sorted((ROOT / "fixtures/conformance/valid").glob("*.json")):
    errors = list(validator.iter_errors(json.loads(path.read_text())))
    checked += 1
    if errors:
        problems.append(f"{path.relative_to(ROOT)}: valid fixture fails the schema: {errors[0].message}")
for expect in sorted((ROOT / "fixtures/conformance/invalid").glob("*.expect.json")):
    verdict = json.loads(expect.read_text())["schema"]
    if verdict == "unparsed":
        continue
    fixture = expect.with_name(expect.name.replace(".expect.json", ".jsonl"))
    for number, line in enumerate(fixture.read_text().splitlines(), 1):
        if not line.strip():
            continue
        errors = list(validator.iter_errors(json.loads(line)))
        checked += 1
        if verdict == "reject" and not errors:
            problems.append(f"{fixture.relative_to(ROOT)}:{number}: declared schema-visible, but the schema accepts it")
        if verdict == "accept" and errors:
            problems.append(f"{fixture.relative_to(ROOT)}:{number}: declared schema-invisible, but the schema rejects it: {errors[0].message}")
for p in problems:
    print(p)
print(f"schema check: {checked} instances, {len(problems)} disagreements")
sys.exit(1 if problems else 0)
