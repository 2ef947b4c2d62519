#!/usr/bin/env bash
# The seed's two Athena queries over the same Parquet files: `shardline query`'s engine
# (DataFusion, infra/query/examples/query_bench.rs) beside DuckDB, in one run.
#
# Usage: scripts/bench-query.sh [ROWS]      (default 10000000)
# Needs .venv with duckdb (scripts/test-all.sh creates it). Data goes to a temporary directory
# that is removed at the end. The Rust side is built with the `fast` profile into target-bench/
# (or $BENCH_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000000}
py=.venv/bin/python
if [ ! -x "$py" ] || ! "$py" -c 'import duckdb' 2>/dev/null; then
  echo "bench-query: $py with duckdb not found; run scripts/test-all.sh once to create .venv" >&2
  exit 2
fi
dir=$(mktemp -d /tmp/shardline-query-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT

echo "==> shardline (DataFusion), $rows rows"
# Built together with the shardline binary so features unify the same way (no second DataFusion build).
target="${BENCH_TARGET_DIR:-$(pwd)/target-bench}"
CARGO_TARGET_DIR="$target" cargo build --quiet --profile fast -p shardline --bin shardline \
  --example pipeline_bench -p shardline-query --example query_bench
"$target/fast/examples/query_bench" "$rows" --dir "$dir/data" --runs 5

echo
echo "==> DuckDB $("$py" -c 'import duckdb; print(duckdb.__version__)') on the same files"
"$py" - "$dir/data" <<'PY'
import statistics, sys, time
import duckdb
root = sys.argv[1]
con = duckdb.connect()
con.execute("CREATE SCHEMA infra_monitoring")
con.execute(f"CREATE VIEW infra_monitoring.metrics AS SELECT * FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)")
# Athena's from_unixtime(bigint) -> timestamp; DuckDB spells it to_timestamp.
con.execute("CREATE MACRO from_unixtime(s) AS to_timestamp(s)")
Q1 = """SELECT instance_id, AVG(value) as avg_cpu, MAX(value) as max_cpu, MIN(value) as min_cpu
FROM infra_monitoring.metrics WHERE metric_type = 'cpu_utilization'
GROUP BY instance_id ORDER BY avg_cpu DESC;"""
Q2 = """SELECT from_unixtime(timestamp) as time, metric_type, AVG(value) as avg_value
FROM infra_monitoring.metrics GROUP BY timestamp, metric_type ORDER BY timestamp DESC LIMIT 100;"""
print("| query | result rows | cold (ms) | warm best (ms) | warm median (ms) | warm runs |")
print("|---|---|---|---|---|---|")
for name, q in (("Q1", Q1), ("Q2", Q2)):
    t = time.perf_counter(); rows = con.execute(q).fetchall(); cold = (time.perf_counter() - t) * 1000
    warm = []
    for _ in range(5):
        t = time.perf_counter(); con.execute(q).fetchall(); warm.append((time.perf_counter() - t) * 1000)
    print(f"| {name} | {len(rows)} | {cold:.0f} | {min(warm):.0f} | {statistics.median(warm):.0f} | {len(warm)} |")
PY
