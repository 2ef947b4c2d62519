#!/usr/bin/env bash
# Memory and descriptors of `shardline up` over a long run: starts `up` with the synthetic
# collector at a fixed rate and samples, every INTERVAL seconds, its anonymous resident memory
# (RssAnon in /proc/PID/status), its open descriptors (/proc/PID/fd: all, those of deleted
# files, those of the item table and of the log), the data directory's size, the machine's load
# (1-minute load average: the machine may be shared) and the last status line. Prints one
# Markdown table row per sample, and writes them to OUT/samples.md.
#
# Usage: scripts/soak-memory.sh [options]
#   --bin PATH          shardline binary (default: $CARGO_TARGET_DIR or target, fast profile)
#   --duration SECS     how long `up` runs (default 3600)
#   --interval SECS     seconds between samples (default 30)
#   --instances N       synthetic instances; four events each per collection (default 5000)
#   --every DURATION    collection interval (default 1s: 5,000 instances make 20,000 events/s)
#   --out DIR           where the data directory, the config, up's output and the samples go
#                       (default: a new directory under ${TMPDIR:-/tmp}); removed at the end
#                       unless --keep
#   --keep              keep the data directory
#   --min-free GIB      stop early once the disk holding OUT has less than this free (default 3):
#                       every store is on disk, so the data directory grows with the events
# Anything else in the environment reaches `up`, e.g. SHARDLINE__CONSUMERS__S3__ENABLED=false.
#
# Bounded: `up` stops itself after --duration; the script stops it (SIGINT, then SIGKILL after
# 120 s more) if it has not exited 300 s after that, and on Ctrl-C or any exit of the script.
# It stops only the process it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CARGO_TARGET_DIR:-target}/fast/shardline"
duration=3600
interval=30
instances=5000
every=1s
out=""
keep=0
min_free=3
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --instances) instances=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --min-free) min_free=$2; shift 2 ;;
    *) echo "soak-memory: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
if [ ! -x "$bin" ]; then
  echo "soak-memory: no binary at $bin; build it with 'cargo build --profile fast' or pass --bin" >&2
  exit 2
fi
if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/shardline-soak.XXXXXX")
fi
mkdir -p "$out"
data="$out/data"
config="$out/shardline.toml"
cat >"$config" <<EOF
[collectors]
interval = "$every"
run = ["synthetic"]
[collectors.synthetic]
instances = $instances
[notifier]
type = "outbox"
EOF

pid=""
stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "soak-memory: up did not stop within 120 s of SIGINT; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
cleanup() {
  stop
  if [ "$keep" = 0 ]; then rm -rf "$data"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin" --config "$config" --data-dir "$data" up --duration "${duration}s" >"$out/up.log" 2>&1 &
pid=$!
start=$(date +%s)
deadline=$((start + duration + 300))
echo "soak-memory: up (pid $pid) for ${duration}s, $instances instances every $every; data in $data" >&2

header="| min | RssAnon MiB | VmHWM MiB | fds | deleted | table fds | log fds | data GiB | load | status |"
printf '%s\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n' "$header" | tee "$out/samples.md"
sample() {
  local now status rss hwm fds=0 deleted=0 table=0 log=0 target size load line
  now=$(date +%s)
  status=/proc/$pid/status
  [ -r "$status" ] || return 1
  rss=$(awk '/^RssAnon:/ {printf "%.0f", $2 / 1024}' "$status")
  hwm=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "$status")
  for fd in /proc/"$pid"/fd/*; do
    target=$(readlink "$fd" 2>/dev/null) || continue
    fds=$((fds + 1))
    case "$target" in *" (deleted)") deleted=$((deleted + 1)) ;; esac
    case "$target" in "$data"/local/table/*) table=$((table + 1)) ;; esac
    case "$target" in "$data"/log/*) log=$((log + 1)) ;; esac
  done
  size=$(du -sk "$data" 2>/dev/null | awk '{printf "%.1f", $1 / 1048576}')
  load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(grep -a '^\[' "$out/up.log" | tail -n 1 | cut -c1-160 || true)
  printf '| %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$(awk -v s=$((now - start)) 'BEGIN {print s / 60}')" "$rss" "$hwm" "$fds" "$deleted" "$table" "$log" \
    "$size" "$load" "${line//|/\/}" | tee -a "$out/samples.md"
}

while kill -0 "$pid" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "soak-memory: up still running 300 s after its duration; stopping it" >&2
    break
  fi
  sleep "$interval" &
  wait $! || true
  kill -0 "$pid" 2>/dev/null || break
  sample || break
  free_kib=$(df --output=avail -k "$out" | tail -n 1 | tr -d ' ')
  if [ "$free_kib" -lt $((min_free * 1048576)) ]; then
    echo "soak-memory: less than ${min_free} GiB free on the disk of $out; stopping early" >&2
    break
  fi
done
stop
echo "soak-memory: done; up's output in $out/up.log, samples in $out/samples.md" >&2
tail -n 8 "$out/up.log" >&2
