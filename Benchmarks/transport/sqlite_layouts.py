#!/usr/bin/env python3
"""Insert rate and bytes written for candidate outbox layouts, with Python's sqlite3 alone.

usage: sqlite_layouts.py LAYOUT EVENTS BATCH [--page-size N] [--checkpoint-pages N] [--extra-bytes N]
  LAYOUT: text   (unique index on the 64-character event_id: the stop-7 layout)
          blob   (unique index on the 32-byte id)
          prefix (index on the id's first 64 bits as an integer: the v2 layout)
          noindex
Reads the first EVENTS lines of bench-data/mixed-1000000.jsonl (Benchmarks/validate/generate.py),
inserts them in transactions of BATCH rows (WAL, synchronous=FULL, 32 MiB cache) and prints
events/s and the process's write_bytes from /proc. --extra-bytes N stores N more bytes with each
event (a second encoding kept beside the text: OTLP's record is 1107 bytes for these events).
"""
import argparse, os, sqlite3, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("layout", choices=["text", "blob", "prefix", "noindex"])
parser.add_argument("events", type=int)
parser.add_argument("batch", type=int)
parser.add_argument("--page-size", type=int, default=4096)
parser.add_argument("--checkpoint-pages", type=int, default=1000)
parser.add_argument("--extra-bytes", type=int, default=0)
parser.add_argument("--data", default="bench-data/mixed-1000000.jsonl")
args = parser.parse_args()

lines = []
with open(args.data) as f:
    for line in f:
        if len(lines) == args.events: break
        lines.append(line.rstrip("\n"))
# The generator's event ids are real SHA-256 digests; take them from the lines.
ids = [line.split('"event_id":"', 1)[1][:64] for line in lines]

folder = tempfile.mkdtemp(prefix="emit-sqlite-layouts-")
db = sqlite3.connect(os.path.join(folder, "events.sqlite"), isolation_level=None)
db.execute(f"PRAGMA page_size={args.page_size}")
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("PRAGMA cache_size=-32768")
db.execute(f"PRAGMA wal_autocheckpoint={args.checkpoint_pages}")
key_type, unique = {"text": ("TEXT", "UNIQUE"), "blob": ("BLOB", "UNIQUE"), "prefix": ("INTEGER", ""), "noindex": ("TEXT", "")}[args.layout]
db.execute(f"CREATE TABLE events(seq INTEGER PRIMARY KEY, id_key {key_type} NOT NULL {unique}, event_id TEXT NOT NULL, body TEXT NOT NULL, added_at REAL NOT NULL, extra BLOB)")
if args.layout == "prefix":
    db.execute("CREATE INDEX events_id_key ON events(id_key)")
key = {
    "text": lambda i: i, "noindex": lambda i: i,
    "blob": lambda i: bytes.fromhex(i),
    "prefix": lambda i: int.from_bytes(bytes.fromhex(i[:16]), "big", signed=True),
}[args.layout]

extra = os.urandom(args.extra_bytes) if args.extra_bytes else None
start = time.time()
now = start
for first in range(0, args.events, args.batch):
    db.execute("BEGIN")
    db.executemany("INSERT INTO events(id_key, event_id, body, added_at, extra) VALUES (?, ?, ?, ?, ?)",
                   ((key(ids[i]), ids[i], lines[i], now, extra) for i in range(first, min(args.events, first + args.batch))))
    db.execute("COMMIT")
elapsed = time.time() - start
written = next(int(l.split()[1]) for l in open(f"/proc/{os.getpid()}/io") if l.startswith("write_bytes"))
print(f"{args.layout} events={args.events} batch={args.batch} page={args.page_size} checkpoint={args.checkpoint_pages} extra={args.extra_bytes}: "
      f"{elapsed:.2f} s, {args.events / elapsed:,.0f} events/s, {written / 1e9:.2f} GB written")
db.close()
for name in os.listdir(folder): os.remove(os.path.join(folder, name))
os.rmdir(folder)
