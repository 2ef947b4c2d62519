"""Checks per-key order in the Parquet a consumer wrote across a resharding.

Usage: parquet_key_order.py PARQUET_ROOT LINEAGE_JSON

Reads every `shardId-*.parquet` object under PARQUET_ROOT in the order the sink wrote them
(modification time, then name) and each object's rows in order. For every partition key
(instance_id) the rows must follow the stream's order for that key: within one shard by
increasing sequence number, and from a shard only to one of its descendants in the lineage
(LINEAGE_JSON: ListShards' ShardId, ParentShardId and AdjacentParentShardId as printed by
kinesis_reshard_up.py). Prints JSON: rows, keys, crossings (a key moving from a shard to a
descendant) and the first violations.
"""

import json
import os
import sys

import pyarrow.parquet as pq

root, lineage = sys.argv[1], json.loads(sys.argv[2])

parents = {}
for s in lineage:
    parents[s["id"]] = [p for p in (s.get("parent"), s.get("adjacent")) if p]


def descends(child, ancestor):
    todo, seen = [child], set()
    while todo:
        s = todo.pop()
        for p in parents.get(s, []):
            if p == ancestor:
                return True
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return False


objects = []
for dirpath, _, files in os.walk(root):
    for name in files:
        if name.startswith("shardId-") and name.endswith(".parquet"):
            path = os.path.join(dirpath, name)
            objects.append((os.stat(path).st_mtime_ns, name, path))
objects.sort()

last = {}  # instance_id -> (shard_id, sequence number)
rows = crossings = 0
violations = []
for _, _, path in objects:
    t = pq.read_table(path, columns=["instance_id", "shard_id", "sequence_number"]).to_pydict()
    for key, shard, seq in zip(t["instance_id"], t["shard_id"], t["sequence_number"]):
        rows += 1
        seq = int(seq)
        prev = last.get(key)
        if prev is not None:
            pshard, pseq = prev
            if shard == pshard and seq <= pseq:
                violations.append(f"{key}: {shard} {seq} after {pseq}")
            elif shard != pshard:
                if descends(shard, pshard):
                    crossings += 1
                else:
                    violations.append(f"{key}: {shard} after {pshard}, not its descendant")
        last[key] = (shard, seq)

print(json.dumps({"rows": rows, "keys": len(last), "crossings": crossings, "violations": violations[:5]}))
