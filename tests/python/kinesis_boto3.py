"""boto3 drives `shardline serve` through the whole Kinesis API surface.

Usage: kinesis_boto3.py ENDPOINT_URL

Create, PutRecords and PutRecord, every iterator type, ListShards paging, tags, retention,
SplitShard, MergeShards, UpdateShardCount; then every shard, closed parents first, is read to
its end: a closed parent ends with ChildShards and no NextShardIterator, and every record
comes back exactly once, in per-shard order, with its bytes intact. Exits non-zero (with the
failed assertion) on any difference; prints one JSON summary line on success.
"""

import datetime
import json
import os
import sys

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
kinesis = boto3.client(
    "kinesis",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
    config=Config(retries={"max_attempts": 1}),
)
STREAM = "boto3-stream"

kinesis.create_stream(StreamName=STREAM, ShardCount=2)
kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 1})
desc = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]
assert desc["StreamStatus"] == "ACTIVE", desc
assert len(desc["Shards"]) == 2

sent = {}  # data -> (partition key, shard, sequence number)
order = []


def put_batch(tag, n):
    records = []
    for i in range(n):
        data = os.urandom(16) + f"{tag}-{i}".encode()
        records.append({"Data": data, "PartitionKey": f"key-{i % 11}"})
    out = kinesis.put_records(StreamName=STREAM, Records=records)
    assert out["FailedRecordCount"] == 0, out
    for rec, res in zip(records, out["Records"]):
        sent[rec["Data"]] = (rec["PartitionKey"], res["ShardId"], res["SequenceNumber"])
        order.append(rec["Data"])
    return out


put_batch("a", 200)
one = kinesis.put_record(StreamName=STREAM, Data=b"\x00\xffsingle", PartitionKey="key-0")
sent[b"\x00\xffsingle"] = ("key-0", one["ShardId"], one["SequenceNumber"])
order.append(b"\x00\xffsingle")

# Every iterator type on the shard holding the single record.
shard = one["ShardId"]


def first_data(**kw):
    it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, **kw)["ShardIterator"]
    recs = kinesis.get_records(ShardIterator=it)["Records"]
    return recs[0]["Data"] if recs else None


assert first_data(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=one["SequenceNumber"]) == b"\x00\xffsingle"
assert first_data(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=one["SequenceNumber"]) is None
assert first_data(ShardIteratorType="LATEST") is None
assert first_data(ShardIteratorType="TRIM_HORIZON") is not None
assert first_data(ShardIteratorType="AT_TIMESTAMP", Timestamp=datetime.datetime(2000, 1, 1)) is not None
future_ts = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=0)
latest_it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]

# Tags and retention.
kinesis.add_tags_to_stream(StreamName=STREAM, Tags={"team": "infra", "env": "test", "tier": "1"})
tags = kinesis.list_tags_for_stream(StreamName=STREAM, Limit=2)
assert [t["Key"] for t in tags["Tags"]] == ["env", "team"] and tags["HasMoreTags"], tags
kinesis.remove_tags_from_stream(StreamName=STREAM, TagKeys=["env"])
assert [t["Key"] for t in kinesis.list_tags_for_stream(StreamName=STREAM)["Tags"]] == ["team", "tier"]
kinesis.increase_stream_retention_period(StreamName=STREAM, RetentionPeriodHours=72)
kinesis.decrease_stream_retention_period(StreamName=STREAM, RetentionPeriodHours=48)
assert kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
try:
    kinesis.decrease_stream_retention_period(StreamName=STREAM, RetentionPeriodHours=72)
    raise AssertionError("a longer retention through Decrease must fail")
except kinesis.exceptions.InvalidArgumentException:
    pass

# Resharding: split, merge, uniform scaling, with records between the steps.
shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
s0 = shards[0]
lo, hi = int(s0["HashKeyRange"]["StartingHashKey"]), int(s0["HashKeyRange"]["EndingHashKey"])
kinesis.split_shard(StreamName=STREAM, ShardToSplit=s0["ShardId"], NewStartingHashKey=str((lo + hi) // 2))
put_batch("b", 200)
# The latest iterator of the record's shard still works (its shard may now be closed).
kinesis.get_records(ShardIterator=latest_it)
kinesis.merge_shards(StreamName=STREAM, ShardToMerge="shardId-000000000003", AdjacentShardToMerge="shardId-000000000001")
put_batch("c", 200)
out = kinesis.update_shard_count(StreamName=STREAM, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
assert out["CurrentShardCount"] == 2 and out["TargetShardCount"] == 4, out
put_batch("d", 200)

# ListShards paging: NextToken alone; with StreamName it is refused.
paged = []
page = kinesis.list_shards(StreamName=STREAM, MaxResults=3)
while True:
    paged += page["Shards"]
    token = page.get("NextToken")
    if not token:
        break
    try:
        kinesis.list_shards(StreamName=STREAM, NextToken=token)
        raise AssertionError("NextToken with StreamName must be refused")
    except kinesis.exceptions.InvalidArgumentException:
        pass
    page = kinesis.list_shards(NextToken=token, MaxResults=3)
all_shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
assert [s["ShardId"] for s in paged] == [s["ShardId"] for s in all_shards]
open_shards = kinesis.list_shards(StreamName=STREAM, ShardFilter={"Type": "AT_LATEST"})["Shards"]
assert len(open_shards) == 4 and all("EndingSequenceNumber" not in s["SequenceNumberRange"] for s in open_shards)
horizon = kinesis.list_shards(StreamName=STREAM, ShardFilter={"Type": "AT_TRIM_HORIZON"})["Shards"]
assert [s["ShardId"] for s in horizon] == ["shardId-000000000000", "shardId-000000000001"], horizon

# Read every shard to its end; closed parents end with ChildShards.
seen = {}
for s in all_shards:
    closed = "EndingSequenceNumber" in s["SequenceNumberRange"]
    it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    last_seq = None
    while True:
        r = kinesis.get_records(ShardIterator=it, Limit=37)
        for rec in r["Records"]:
            seq = int(rec["SequenceNumber"])
            assert last_seq is None or seq > last_seq, "per-shard order"
            last_seq = seq
            assert rec["Data"] not in seen, "a record came back twice"
            seen[rec["Data"]] = (rec["PartitionKey"], s["ShardId"], rec["SequenceNumber"])
        nxt = r.get("NextShardIterator")
        if nxt is None:
            assert closed, f"{s['ShardId']} is open but returned no next iterator"
            kids = [c["ShardId"] for c in r.get("ChildShards", [])]
            assert kids, f"closed {s['ShardId']} ended without ChildShards"
            break
        if not r["Records"]:
            assert not closed or r["MillisBehindLatest"] >= 0
            if not closed:
                break
        it = nxt

assert seen == sent, f"{len(seen)} read vs {len(sent)} sent; missing {len(set(sent) - set(seen))}"
kinesis.delete_stream(StreamName=STREAM)
assert STREAM not in kinesis.list_streams()["StreamNames"]
print(json.dumps({"records": len(seen), "shards": len(all_shards)}))
