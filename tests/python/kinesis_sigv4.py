"""Signatures computed by botocore verify against `shardline serve` with access keys configured;
a wrong secret, an unknown key id and an unsigned request are refused with Kinesis's errors,
and none of them reaches the log.

Usage: kinesis_sigv4.py ENDPOINT_URL KEY_ID SECRET

Exits non-zero (with the failed assertion) on any difference; prints one JSON line on success.
"""

import json
import sys
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret = sys.argv[1], sys.argv[2], sys.argv[3]


def client(key, secret_key, region="us-east-1"):
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=key, aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}),
    )


def refused(call, code):
    try:
        call()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e.response['Error']}"
        return e.response["Error"]["Message"]
    raise AssertionError(f"expected {code}, the call succeeded")


good = client(key_id, secret)
good.create_stream(StreamName="signed", ShardCount=1)
put = good.put_record(StreamName="signed", Data=b"signed by botocore", PartitionKey="k")
# A region other than the endpoint's still verifies: the signature covers the scope it names.
other_region = client(key_id, secret, region="eu-west-1")
it = other_region.get_shard_iterator(
    StreamName="signed", ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
records = good.get_records(ShardIterator=it)["Records"]
assert [r["Data"] for r in records] == [b"signed by botocore"], records

refused(lambda: client(key_id, secret + "x").put_record(
    StreamName="signed", Data=b"wrong secret", PartitionKey="k"), "InvalidSignatureException")
refused(lambda: client("AKIDNOTCONFIGURED", secret).put_record(
    StreamName="signed", Data=b"unknown key", PartitionKey="k"), "UnrecognizedClientException")
refused(lambda: client(key_id, secret + "x").create_stream(
    StreamName="unsigned-stream", ShardCount=1), "InvalidSignatureException")

req = urllib.request.Request(endpoint, data=json.dumps({"StreamName": "unsigned-stream", "ShardCount": 1}).encode(),
                             method="POST", headers={"Content-Type": "application/x-amz-json-1.1",
                                                     "X-Amz-Target": "Kinesis_20131202.CreateStream"})
try:
    urllib.request.urlopen(req, timeout=30)
    raise AssertionError("an unsigned request was accepted")
except urllib.error.HTTPError as e:
    body = json.loads(e.read())
    assert e.code == 400 and body["__type"] == "MissingAuthenticationTokenException", (e.code, body)

# Nothing refused reached the log: one stream, one record.
assert good.list_streams()["StreamNames"] == ["signed"]
it = good.get_shard_iterator(StreamName="signed", ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
assert len(good.get_records(ShardIterator=it)["Records"]) == 1
print(json.dumps({"verified": True}))
