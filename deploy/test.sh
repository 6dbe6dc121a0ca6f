#!/usr/bin/env bash
# The test command (README, "Tests"): installs what the tests need when it is missing, starts
# ClickHouse and Tansu on free 127.0.0.1 ports with their data in a temporary directory, runs
# every test of the workspace against them, and stops both services even when tests fail.
#
#   deploy/test.sh                 all tests
#   deploy/test.sh -E 'test(seed)' extra arguments go to cargo nextest run
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh

ensure_clickhouse
ensure_tansu

work=$(mktemp -d "${TMPDIR:-/tmp}/clickledger-test.XXXXXX")
cleanup() {
  stop_services
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_clickhouse "$work/clickhouse"
start_tansu "$work/tansu"

# The restart test runs the worker binaries as processes, so build them first.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast "$@"
