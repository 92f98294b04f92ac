#!/usr/bin/env python3
"""Validates a JSONL file against schema/ with one implementation, streaming line by line.
usage: schema_validate.py jsonschema|jsonschema-rs SCHEMA FILE   (prints valid/invalid counts)"""
import json
import sys

impl, schema_path, path = sys.argv[1], sys.argv[2], sys.argv[3]
schema = json.load(open(schema_path))
if impl == "jsonschema":
    import jsonschema
    is_valid = jsonschema.Draft202012Validator(schema).is_valid
else:
    import jsonschema_rs
    is_valid = jsonschema_rs.Draft202012Validator(schema).is_valid
valid = invalid = 0
with open(path, encoding="utf-8") as f:
    for line in f:
        if is_valid(json.loads(line)):
            valid += 1
        else:
            invalid += 1
print(f"{valid} valid, {invalid} invalid")
