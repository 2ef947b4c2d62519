#!/usr/bin/env bash
# `shardline loadgen` against `shardline serve` and against kinesalite, in the same run, with the
# same client (loadgen's aws-sdk-kinesis) and the same workload: ~200 B metric records,
# 500-record PutRecords, 16 concurrent callers, as fast as they go, then every record read back
# with GetRecords. Prints one Markdown table row per target and leaves the JSON reports in
# $OUT (default target/bench-kinesis).
#
# Usage: scripts/bench-kinesis.sh [DURATION]        (default 20s per target)
#
# Uses target/fast/shardline (built here with `cargo build --profile fast` when missing; set
# SHARDLINE_BIN to use another build) and kinesalite 3.3.3 from npm, installed into .tools/.
# Both servers listen on 127.0.0.1 on free ports and are stopped by PID, also on failure.
# `shardline serve` runs with its defaults: fsync durability (a record is on disk before it is
# acknowledged). kinesalite keeps streams in memory (its default) and never syncs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=${1:-20s}
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=${SHARDLINE_BIN:-$target_dir/fast/shardline}
out=${OUT:-$target_dir/bench-kinesis}
mkdir -p "$out"

if [ ! -x "$bin" ]; then
  echo "building $bin (cargo build --profile fast -p shardline)..." >&2
  cargo build --profile fast -p shardline >&2
fi
if [ ! -f .tools/node_modules/kinesalite/index.js ]; then
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools kinesalite@3.3.3 >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# shardline serve on a fresh data directory.
mkdir -p "$work/shardline"
printf '[serve]\nlisten = "127.0.0.1:0"\nshard_limit = 1000\n' > "$work/shardline/shardline.toml"
(cd "$work/shardline" && exec "$bin" --data-dir "$work/shardline/data" serve >"$out/serve.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 300); do
  [ -s "$work/shardline/data/kinesis-endpoint" ] && break
  sleep 0.1
done
serve_url=$(cat "$work/shardline/data/kinesis-endpoint")

# kinesalite, bound to 127.0.0.1 (its command line binds every interface).
kport=$(free_port)
node -e "require('$root/.tools/node_modules/kinesalite')({shardLimit: 1000, createStreamMs: 0}).listen($kport, '127.0.0.1')" \
  >"$out/kinesalite.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $kport), 1)" 2>/dev/null && break
  sleep 0.1
done
kinesalite_url="http://127.0.0.1:$kport"

run() {
  local name=$1 url=$2
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench "$bin" --data-dir "$work/loadgen-$name" loadgen \
    --endpoint "$url" --stream bench --shards 4 --rate 0 --duration "$duration" \
    --record-size 200 --batch 500 --callers 16 --read-back --json "$out/$name.json" >"$out/$name.txt"
}
run shardline "$serve_url"
run kinesalite "$kinesalite_url"

echo "| target | PutRecords rec/s | p50 / p99 ack | GetRecords rec/s | p50 / p99 GetRecords | records |"
echo "|---|---:|---:|---:|---:|---:|"
for name in shardline kinesalite; do
  python3 - "$out/$name.json" "$name" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
b = r.get("read_back") or {}
l, c = r["ack_latency"], b.get("call_latency", {})
print(f"| {sys.argv[2]} | {r['achieved_rate']:,.0f} | {l['p50_ms']:.1f} / {l['p99_ms']:.1f} ms "
      f"| {b.get('rate', 0):,.0f} | {c.get('p50_ms', 0):.1f} / {c.get('p99_ms', 0):.1f} ms "
      f"| {r['acknowledged']:,} acked, {b.get('records', 0):,} read, {r['failed'] + r['throttled']} failed |")
EOF
done
python3 - "$out/shardline.json" "$out/kinesalite.json" <<'EOF'
import json, sys
s, k = (json.load(open(p)) for p in sys.argv[1:3])
w = s["achieved_rate"] / max(k["achieved_rate"], 1e-9)
r = s["read_back"]["rate"] / max(k["read_back"]["rate"], 1e-9)
print(f"\nshardline / kinesalite: writes {w:.1f}x, reads {r:.1f}x")
EOF
