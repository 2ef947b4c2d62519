#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh machine, setting up what the tests need:
#   - a Python venv (.venv) with pyarrow and duckdb (the Parquet output is read back by both)
#     and statelint (ASL linting), cfn-lint (the SAM template);
#   - asl-validator from the npm registry (in .tools/, not global);
#   - cargo fmt --check, cargo clippy -D warnings, cargo test (debug builds).
# Usage: scripts/test-all.sh            (from anywhere; it cds to the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "Python venv with pyarrow, duckdb and statelint (.venv)"
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pyarrow, duckdb' 2>/dev/null; then
  "$py" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/pip install --quiet --disable-pip-version-check 'pyarrow>=15' 'duckdb>=1.0' 'statelint>=3'
fi
if [ ! -x .venv/bin/cfn-lint ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'cfn-lint>=1.20'
fi
.venv/bin/python -c 'import pyarrow, duckdb; print("pyarrow", pyarrow.__version__, "duckdb", duckdb.__version__)'
export SHARDLINE_TEST_PYTHON="$root/.venv/bin/python"

step "asl-validator (.tools/node_modules)"
if [ ! -x .tools/node_modules/.bin/asl-validator ]; then
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools asl-validator@4 >/dev/null
fi

step "Lint the state machine definitions (asl-validator, statelint)"
for def in infra/deploy/statemachine/*.asl.json; do
  .tools/node_modules/.bin/asl-validator --json-path "$def"
  .venv/bin/statelint --ignore=FLOAT "$def"
  echo "ok: $def"
done

step "Lint the deploy template (cfn-lint: errors and warnings fail)"
.venv/bin/cfn-lint infra/deploy/template.yaml
echo "ok: infra/deploy/template.yaml"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked
