"""Reshards a stream in a loop until the endpoint goes away: splits, merges and uniform
scaling, one after another.

Usage: kinesis_resharder.py ENDPOINT_URL STREAM SEED

Stops by itself after 60 s at most; any failure to reach the endpoint ends it.
"""

import random
import sys
import time

import boto3
from botocore.config import Config

endpoint, stream, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
k = boto3.client(
    "kinesis", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="local", aws_secret_access_key="local",
    config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=20),
)
deadline = time.time() + 60
step = 0
while time.time() < deadline:
    try:
        shards = k.list_shards(StreamName=stream, ShardFilter={"Type": "AT_LATEST"})["Shards"]
        shards.sort(key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
        op = step % 3
        step += 1
        if op == 0 and len(shards) < 8:
            s = rng.choice(shards)
            lo, hi = int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])
            if hi - lo > 4:
                k.split_shard(StreamName=stream, ShardToSplit=s["ShardId"], NewStartingHashKey=str(rng.randint(lo + 2, hi - 1)))
        elif op == 1 and len(shards) > 1:
            i = rng.randrange(len(shards) - 1)
            k.merge_shards(StreamName=stream, ShardToMerge=shards[i]["ShardId"], AdjacentShardToMerge=shards[i + 1]["ShardId"])
        else:
            n = len(shards)
            target = rng.randint(max(1, (n + 1) // 2), min(2 * n, 6))
            k.update_shard_count(StreamName=stream, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
    except k.exceptions.LimitExceededException:
        continue
    except Exception:
        sys.exit(0)
