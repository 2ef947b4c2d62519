#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh machine, setting up what the tests need:
#   - a Python venv (.venv) with pyarrow and duckdb (the Parquet output is read back by both),
#     statelint (ASL linting), cfn-lint (the SAM template), and boto3, awscli and cbor2 (the
#     Kinesis endpoint's clients);
#   - asl-validator and playwright-core from the npm registry (in .tools/, not global), and
#     Debian's chromium (the dashboard test drives it headless);
#   - moto's server (moto[server] in .venv) on 127.0.0.1 and a free port, for the AWS
#     adapters' tests (shardline-aws's moto-tests feature); stopped on exit, also on failure;
#   - cargo fmt --check, then cargo test (debug builds) with clippy's lints as errors in the same
#     compilation.
# Usage: scripts/test-all.sh            (from anywhere; it cds to the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "Python venv with pyarrow, duckdb, statelint, boto3, awscli and cbor2 (.venv)"
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pyarrow, duckdb' 2>/dev/null; then
  "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'pyarrow>=15' 'duckdb>=1.0' 'statelint>=3'
fi
if ! .venv/bin/python -c 'import boto3, awscli, cbor2' 2>/dev/null || [ ! -x .venv/bin/aws ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'boto3>=1.34' 'awscli>=1.32' 'cbor2>=5.6'
fi
if [ ! -x .venv/bin/cfn-lint ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'cfn-lint>=1.20'
fi
.venv/bin/python -c 'import pyarrow, duckdb, boto3, cbor2; print("pyarrow", pyarrow.__version__, "duckdb", duckdb.__version__, "boto3", boto3.__version__, "cbor2 ok")'
export SHARDLINE_TEST_PYTHON="$root/.venv/bin/python"

step "moto's server in .venv (AWS stand-in for shardline-aws's tests)"
if ! .venv/bin/python -c 'import moto.server, flask' 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
fi
.venv/bin/python -c 'import moto; print("moto", moto.__version__)'

step "asl-validator (.tools/node_modules)"
if [ ! -x .tools/node_modules/.bin/asl-validator ]; then
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools asl-validator@4 >/dev/null
fi

step "Headless Chromium (Debian's package) and playwright-core (.tools/node_modules)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
chromium --version
if [ ! -f .tools/node_modules/playwright-core/package.json ]; then
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools playwright-core@1 >/dev/null
fi
export SHARDLINE_TEST_NODE_MODULES="$root/.tools/node_modules"
export SHARDLINE_TEST_CHROMIUM="$(command -v chromium)"

step "Lint the state machine definitions (asl-validator, statelint)"
for def in infra/deploy/statemachine/*.asl.json infra/deploy/mocks/*.asl.json; do
  .tools/node_modules/.bin/asl-validator --json-path "$def"
  .venv/bin/statelint --ignore=FLOAT "$def"
  echo "ok: $def"
done

step "Lint the deploy template (cfn-lint: errors and warnings fail)"
.venv/bin/cfn-lint infra/deploy/template.yaml
echo "ok: infra/deploy/template.yaml"

step "Start moto on 127.0.0.1 (stopped when this script exits)"
moto_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/python scripts/moto_server.py "$moto_port" >"${TMPDIR:-/tmp}/shardline-moto-$moto_port.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
export SHARDLINE_MOTO_URL="http://127.0.0.1:$moto_port"
for _ in $(seq 1 120); do
  if .venv/bin/python -c "import urllib.request, sys; urllib.request.urlopen('$SHARDLINE_MOTO_URL/moto-api/', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "moto did not start; its log:" >&2
    cat "${TMPDIR:-/tmp}/shardline-moto-$moto_port.log" >&2
    exit 1
  fi
  sleep 0.5
done
.venv/bin/python -c "import urllib.request; urllib.request.urlopen('$SHARDLINE_MOTO_URL/moto-api/', timeout=2)" \
  || { echo "moto is not answering at $SHARDLINE_MOTO_URL" >&2; exit 1; }
echo "moto at $SHARDLINE_MOTO_URL (pid $moto_pid)"

step "cargo fmt --check"
cargo fmt --all -- --check

features=shardline-aws/moto-tests,shardline/moto-tests
if [ -n "${CI:-}" ]; then
  # A cold build compiles every workspace crate once: the incremental caches only cost time.
  export CARGO_INCREMENTAL=0
fi
# clippy's lints run inside the test build: clippy-driver (what `cargo clippy` runs) compiles
# the workspace's crates for the tests and lints them in the same pass, warnings as errors,
# instead of a separate check of every crate and dependency before the build. The targets are
# those of `cargo clippy --all-targets` (libraries, binaries, tests and examples; there are no
# bench targets). Without clippy-driver on the PATH or in rustup, a separate clippy pass runs.
clippy_driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
if [ -n "$clippy_driver" ]; then
  step "cargo test, with clippy's lints as errors in the same compilation ($clippy_driver)"
  RUSTC_WORKSPACE_WRAPPER="$clippy_driver" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" \
    cargo test --workspace --locked --features "$features"
else
  step "cargo clippy (all targets, warnings are errors)"
  cargo clippy --workspace --all-targets --locked --features "$features" -- -D warnings
  step "cargo test"
  cargo test --workspace --locked --features "$features"
fi
