"""Writes records to a Kinesis endpoint until the endpoint goes away, noting every record it
got an acknowledgement for.

Usage: kinesis_writer.py ENDPOINT_URL STREAM ACKED_FILE THREADS TAG

THREADS = 1 writes one record per PutRecord call (a sequential writer); more threads each send
PutRecords batches of 25 concurrently. Each acknowledged record's data is appended (and
flushed) to ACKED_FILE.<thread> as soon as its answer arrives. Any failure to reach the
endpoint ends the thread; the script stops by itself after 60 s at most.
"""

import sys
import threading
import time

import boto3
from botocore.config import Config

endpoint, stream, acked_file, threads, tag = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
deadline = time.time() + 60


def client():
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="local", aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=20),
    )


def write(t):
    k = client()
    n = 0
    with open(f"{acked_file}.{t}", "a") as out:
        while time.time() < deadline:
            try:
                if threads == 1:
                    data = f"{tag}-t{t}-{n}"
                    k.put_record(StreamName=stream, Data=data.encode(), PartitionKey=f"p{n % 7}")
                    out.write(data + "\n")
                    n += 1
                else:
                    batch = [f"{tag}-t{t}-{n + i}" for i in range(25)]
                    r = k.put_records(StreamName=stream, Records=[
                        {"Data": d.encode(), "PartitionKey": f"p{(n + i) % 7}"} for i, d in enumerate(batch)])
                    for d, res in zip(batch, r["Records"]):
                        if "SequenceNumber" in res:
                            out.write(d + "\n")
                    n += 25
                out.flush()
            except Exception:
                return


workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
