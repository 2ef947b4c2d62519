"""Splits and then merges the pipeline's stream while `shardline up` runs and writes to it.

Usage: kinesis_reshard_up.py ENDPOINT_URL STREAM

Waits (bounded) for the stream, splits its first shard, waits for records to reach the
children, then merges the second child with the shard after it. Prints the lineage as JSON.
"""

import json
import sys
import time

import boto3
from botocore.config import Config

endpoint, stream = sys.argv[1], sys.argv[2]
k = boto3.client(
    "kinesis", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="local", aws_secret_access_key="local",
    config=Config(retries={"max_attempts": 3}),
)
k.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def records_in(shard_id):
    it = k.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return len(k.get_records(ShardIterator=it)["Records"])


def wait_for_records(shard_ids):
    for _ in range(100):
        if all(records_in(s) > 0 for s in shard_ids):
            return
        time.sleep(0.1)
    raise SystemExit(f"no records reached {shard_ids}")


shards = k.list_shards(StreamName=stream)["Shards"]
first = shards[0]
wait_for_records([first["ShardId"]])
lo, hi = int(first["HashKeyRange"]["StartingHashKey"]), int(first["HashKeyRange"]["EndingHashKey"])
k.split_shard(StreamName=stream, ShardToSplit=first["ShardId"], NewStartingHashKey=str((lo + hi) // 2))
n = len(shards)
left, right = f"shardId-{n:012d}", f"shardId-{n + 1:012d}"
wait_for_records([left, right])
k.merge_shards(StreamName=stream, ShardToMerge=right, AdjacentShardToMerge=shards[1]["ShardId"])
merged = f"shardId-{n + 2:012d}"
wait_for_records([merged])
print(json.dumps([{"id": s["ShardId"], "parent": s.get("ParentShardId"), "adjacent": s.get("AdjacentParentShardId"),
                   "closed": "EndingSequenceNumber" in s["SequenceNumberRange"]}
                  for s in k.list_shards(StreamName=stream)["Shards"]]))
