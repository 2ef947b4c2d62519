#!/usr/bin/env bash
# Benchmarks of operating a pipeline (BENCHMARKS.md, "Replay and the control socket"):
#   1. replay into Parquet from the embedded log: `shardline replay --consumer s3-parquet
#      --from TRIM_HORIZON --into-prefix bench` over N records (default 2,000,000);
#   2. `shardline table query` of one series through the control socket of a running `up`,
#      idle and while its synthetic collector ingests ~300k events/s: latency p50/p99/max over
#      Q queries (default 200), each a new process as a user runs it.
# Usage: scripts/bench-operate.sh [N] [Q] [INSTANCES]   (N = 0 skips part 1; INSTANCES of the
#        synthetic collector in part 2, default 15000 = 300k events/s at 200 ms; builds nothing:
#        set SHARDLINE to the binary, default $CARGO_TARGET_DIR/fast/shardline or target/fast/shardline)
# Bounded: every loop has a count, `up` runs at most 10 minutes and is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000000}
q=${2:-200}
instances=${3:-15000}
bin=${SHARDLINE:-${CARGO_TARGET_DIR:-target}/fast/shardline}
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --profile fast first" >&2; exit 1; }
work=$(mktemp -d)
up_pid=""
cleanup() { [ -n "$up_pid" ] && kill "$up_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
echo "machine: $(lscpu | grep 'Model name' | sed 's/.*: *//'), $(nproc) cores; $(date -u +%F)"

cat > "$work/quiet.toml" <<TOML
[stream]
shards = 4
[collectors]
run = []
[notifier]
type = "outbox"
[flow]
enabled = false
[status]
interval = "1h"
[dashboard]
enabled = false
TOML

if [ "$n" -gt 0 ]; then
echo "== 1. replay into Parquet from the embedded log ($n records)"
python3 - "$n" > "$work/events.jsonl" <<'PY'
import sys, random
n = int(sys.argv[1]); random.seed(1)
types = [("cpu_utilization","cpu"),("memory_usage","mem"),("disk_usage","disk"),("network_traffic","net")]
t0 = 1796000000
out = sys.stdout
for i in range(n):
    inst = i % 5000; mt, p = types[(i // 5000) % 4]; ts = t0 + i // 20000
    out.write('{"metric_id":"%s-%d","metric_type":"%s","timestamp":%d,"value":%.2f,"instance_id":"i-%06d","region":"eu-west-1","collected_at":"2026-12-01T00:00:00Z"}\n'
              % (p, ts, mt, ts, random.uniform(20, 90), inst))
PY
run() { "$bin" --config "$work/quiet.toml" --data-dir "$work/data" "$@"; }
run stream create metrics > /dev/null
start=$(date +%s.%N)
run stream put metrics < "$work/events.jsonl" > /dev/null
echo "appended $n records in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
for i in 1 2; do
  rm -rf "$work/data/s3/infra-monitoring-pipeline-data/bench" "$work/data/s3/infra-monitoring-pipeline-data/_manifests/bench"
  run replay --consumer s3-parquet --from TRIM_HORIZON --into-prefix bench
done
fi

echo "== 2. table query through the control socket"
cat > "$work/busy.toml" <<TOML
[stream]
shards = 4
[collectors]
interval = "200ms"
run = ["synthetic"]
[collectors.synthetic]
instances = $instances
[notifier]
type = "outbox"
[flow]
enabled = false
[status]
interval = "1h"
[dashboard]
enabled = false
TOML
latency() { # $1 = label, $2 = config
  rm -rf "$work/up"
  "$bin" --config "$2" --data-dir "$work/up" up --duration 600s > "$work/up.log" 2>&1 &
  up_pid=$!
  for _ in $(seq 1 300); do [ -S "$work/up/control.sock" ] && break; sleep 0.1; done
  sleep 5
  local id
  id=$("$bin" --config "$2" --data-dir "$work/up" stream get metrics --shard shardId-000000000000 --limit 1 \
    | python3 -c 'import sys, json; print("cpu-" + json.loads(sys.stdin.readline())["data"]["instance_id"])' 2>/dev/null || echo cpu-i-000000)
  local before after t0
  before=$("$bin" --config "$2" --data-dir "$work/up" stream describe metrics | python3 -c 'import sys, json; print(sum(s["records"] for s in json.load(sys.stdin)["shard_stats"]))')
  t0=$(date +%s.%N)
  : > "$work/lat.txt"
  for _ in $(seq 1 "$q"); do
    local a b
    a=$(date +%s%N)
    "$bin" --config "$2" --data-dir "$work/up" table query --metric-id "$id" --limit 10 > /dev/null 2>&1 || true
    b=$(date +%s%N)
    echo $(( (b - a) / 1000 )) >> "$work/lat.txt"
  done
  after=$("$bin" --config "$2" --data-dir "$work/up" stream describe metrics | python3 -c 'import sys, json; print(sum(s["records"] for s in json.load(sys.stdin)["shard_stats"]))')
  python3 - "$1" "$work/lat.txt" "$before" "$after" "$t0" "$(date +%s.%N)" <<'PY'
import sys
label, path, before, after, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
v = sorted(int(x) for x in open(path))
pct = lambda p: v[min(len(v) - 1, int(p * len(v)))] / 1000
print(f"{label}: {len(v)} queries, p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {v[-1]/1000:.1f} ms; "
      f"ingest meanwhile {int((after - before) / (t1 - t0)):,} events/s")
PY
  kill -INT "$up_pid"; wait "$up_pid" || true; up_pid=""
}
latency "idle up (no collectors)" "$work/quiet.toml"
latency "up ingesting ($instances instances x 4 metrics every 200 ms)" "$work/busy.toml"
