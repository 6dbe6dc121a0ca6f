#!/usr/bin/env bash
# The test command (README, "Tests"): installs what the tests need when it is missing
# (ClickHouse 18.16, chdb-core for a current ClickHouse, Tansu, Chromium and chromedriver),
# starts both ClickHouse versions and Tansu on free 127.0.0.1 ports with their data in a
# temporary directory, runs
# every test of the workspace against them, and stops both services even when tests fail.
#
#   deploy/test.sh                 all tests
#   deploy/test.sh -E 'test(seed)' extra arguments go to cargo nextest run
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh

ensure_clickhouse
ensure_chdb
ensure_tansu
ensure_chromium

work=$(mktemp -d "${TMPDIR:-/tmp}/clickledger-test.XXXXXX")
cleanup() {
  stop_services
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_clickhouse "$work/clickhouse"
start_chdb "$work/chdb"
start_tansu "$work/tansu"

# A linker that runs out of disk dies with SIGBUS ("ld terminated with signal 7"), which
# says nothing about space: name the cause up front. A clean build takes about 3.5 GB.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if (( free_kb < 5 * 1024 * 1024 )); then
  echo "warning: $((free_kb / 1024)) MB free on $(df -P . | awk 'NR == 2 { print $6 }');" \
    "a clean build needs about 3.5 GB and the test services' data more" >&2
fi

# The restart test runs the worker binaries as processes, so build them first.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast --run-ignored all "$@"
