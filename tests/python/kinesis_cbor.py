"""Raw AWS CBOR 1.1 requests (what the Java SDK, KPL and KCL send) get CBOR answers equal to
the JSON ones.

Usage: kinesis_cbor.py ENDPOINT_URL

PutRecords is sent as CBOR (blobs as byte strings) and its records are read back with
GetRecords twice from the same position, once as JSON and once as CBOR: sequence numbers,
partition keys, bytes and arrival times must agree (CBOR carries the arrival time as epoch
milliseconds under tag 1, JSON as seconds). Exits non-zero on any difference.
"""

import base64
import json
import os
import sys
import urllib.request

import cbor2

endpoint = sys.argv[1]
# Keep tag 1 as it is on the wire: Kinesis puts epoch milliseconds there, which cbor2's own
# datetime decoding (epoch seconds) would misread.
RAW_TAG_1 = {1: lambda value, immutable: cbor2.CBORTag(1, value)}


def loads(raw):
    return cbor2.loads(raw, semantic_decoders=RAW_TAG_1)


def call(action, body, cbor=False):
    ctype = "application/x-amz-cbor-1.1" if cbor else "application/x-amz-json-1.1"
    data = cbor2.dumps(body) if cbor else json.dumps(body).encode()
    req = urllib.request.Request(endpoint, data=data, method="POST", headers={
        "Content-Type": ctype, "X-Amz-Target": f"Kinesis_20131202.{action}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"] == ctype, resp.headers
        raw = resp.read()
    return loads(raw) if cbor else json.loads(raw)


call("CreateStream", {"StreamName": "cbor", "ShardCount": 1}, cbor=True)
records = [{"Data": os.urandom(40) + bytes([i]), "PartitionKey": f"k{i}"} for i in range(50)]
put = call("PutRecords", {"StreamName": "cbor", "Records": records}, cbor=True)
assert put["FailedRecordCount"] == 0, put
it_body = {"StreamName": "cbor", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}
it_json = call("GetShardIterator", it_body)["ShardIterator"]
it_cbor = call("GetShardIterator", it_body, cbor=True)["ShardIterator"]
as_json = call("GetRecords", {"ShardIterator": it_json})
as_cbor = call("GetRecords", {"ShardIterator": it_cbor}, cbor=True)
assert len(as_json["Records"]) == len(as_cbor["Records"]) == 50
for j, c, sent, res in zip(as_json["Records"], as_cbor["Records"], records, put["Records"]):
    assert j["SequenceNumber"] == c["SequenceNumber"] == res["SequenceNumber"]
    assert j["PartitionKey"] == c["PartitionKey"] == sent["PartitionKey"]
    assert base64.b64decode(j["Data"]) == c["Data"] == sent["Data"], "bytes intact"
    ts = c["ApproximateArrivalTimestamp"]
    assert isinstance(ts, cbor2.CBORTag) and ts.tag == 1, f"tag 1 expected, got {ts!r}"
    assert ts.value == round(j["ApproximateArrivalTimestamp"] * 1000), (ts.value, j["ApproximateArrivalTimestamp"])
assert as_json["MillisBehindLatest"] == as_cbor["MillisBehindLatest"]
# Errors are CBOR too, with the same type and message as in JSON.
ej = ec = None
try:
    call("DescribeStream", {"StreamName": "missing"})
except urllib.error.HTTPError as e:
    ej = json.loads(e.read())
try:
    call("DescribeStream", {"StreamName": "missing"}, cbor=True)
except urllib.error.HTTPError as e:
    ec = loads(e.read())
assert ej == ec and ej["__type"] == "ResourceNotFoundException", (ej, ec)
print(json.dumps({"records": 50}))
