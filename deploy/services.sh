#!/usr/bin/env bash
# Helpers to install and run the real services the tests and benchmarks use: ClickHouse
# (Debian's clickhouse-server, 18.16), a current ClickHouse (chdb-core from PyPI behind
# deploy/chdb/server.py) and the Kafka-compatible broker Tansu. Source this file.
#
#   ensure_clickhouse / ensure_chdb / ensure_tansu
#                                      install when missing (skipped when already present)
#   start_clickhouse DIR / start_chdb DIR / start_tansu DIR
#                                      start on a free 127.0.0.1 port with data in DIR and export
#                                      CLICKLEDGER_CLICKHOUSE_URL / CLICKLEDGER_CURRENT_CLICKHOUSE_URL /
#                                      CLICKLEDGER_KAFKA_BROKERS
#   stop_services                      stop everything started here (safe to call twice)

TANSU_VERSION=0.6.0
CHDB_VERSION=26.9.0
# The virtualenv of chdb-core outlives each test run's work directory, so it installs once.
CHDB_VENV=${CLICKLEDGER_CHDB_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/clickledger/chdb-$CHDB_VERSION}
DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
STARTED_PIDS=()

log() { printf '[services] %s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # PORT NAME SECONDS PID
  local port=$1 name=$2 seconds=$3 pid=$4
  for _ in $(seq 1 $((seconds * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited before opening 127.0.0.1:$port"
      return 1
    fi
    sleep 0.1
  done
  log "$name did not open 127.0.0.1:$port within ${seconds}s"
  return 1
}

ensure_clickhouse() {
  if command -v clickhouse-server >/dev/null 2>&1; then return 0; fi
  log "installing clickhouse-server from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
}

ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then return 0; fi
  log "installing chromium and chromium-driver from Debian's packages (tests of the tracking script)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

ensure_chdb() {
  if "$CHDB_VENV/bin/python" -c 'import chdb, lz4' 2>/dev/null; then return 0; fi
  log "installing chdb-core $CHDB_VERSION from PyPI into $CHDB_VENV (a current ClickHouse, in process)"
  python3 -m venv "$CHDB_VENV"
  "$CHDB_VENV/bin/pip" install -q "chdb-core==$CHDB_VERSION" lz4
}

ensure_tansu() {
  if command -v tansu >/dev/null 2>&1; then return 0; fi
  log "installing tansu $TANSU_VERSION from crates.io (about 8 minutes, once)"
  cargo install tansu --version "$TANSU_VERSION" --features libsql --locked
}

start_clickhouse() { # DIR
  local dir=$1 http_port tcp_port
  mkdir -p "$dir"/{data,tmp,user_files,format_schemas}
  http_port=$(free_port)
  tcp_port=$(free_port)
  sed -e "s#@DIR@#$dir#g" -e "s#@HTTP_PORT@#$http_port#g" -e "s#@TCP_PORT@#$tcp_port#g" \
    "$DEPLOY_DIR/clickhouse/server.xml" > "$dir/config.xml"
  cp "$DEPLOY_DIR/clickhouse/users.xml" "$dir/users.xml"
  clickhouse-server --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1 &
  local pid=$!
  STARTED_PIDS+=($pid)
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if [ "$(curl -s "http://127.0.0.1:$http_port/ping" 2>/dev/null)" = "Ok." ]; then
      export CLICKLEDGER_CLICKHOUSE_URL="http://127.0.0.1:$http_port"
      log "ClickHouse $(curl -s "http://127.0.0.1:$http_port/?query=SELECT%20version()") on $CLICKLEDGER_CLICKHOUSE_URL"
      return 0
    fi
    sleep 0.1
  done
  log "ClickHouse did not answer on port $http_port; its log:"
  tail -20 "$dir/stdout.log" "$dir/server.err.log" >&2 || true
  return 1
}

start_chdb() { # DIR
  local dir=$1 port
  mkdir -p "$dir"
  port=$(free_port)
  (cd "$dir" && exec "$CHDB_VENV/bin/python" "$DEPLOY_DIR/chdb/server.py" "$port" >"$dir/chdb.log" 2>&1) &
  STARTED_PIDS+=($!)
  if ! wait_for_port "$port" chdb 60 $!; then
    tail -20 "$dir/chdb.log" >&2 || true
    return 1
  fi
  export CLICKLEDGER_CURRENT_CLICKHOUSE_URL="http://127.0.0.1:$port"
  log "current ClickHouse (chdb-core $CHDB_VERSION) on $CLICKLEDGER_CURRENT_CLICKHOUSE_URL"
}

start_tansu() { # DIR
  local dir=$1 port
  mkdir -p "$dir"
  port=$(free_port)
  (cd "$dir" && exec tansu broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "sqlite://tansu.db" >"$dir/tansu.log" 2>&1) &
  STARTED_PIDS+=($!)
  if ! wait_for_port "$port" tansu 60 $!; then
    tail -20 "$dir/tansu.log" >&2 || true
    return 1
  fi
  export CLICKLEDGER_KAFKA_BROKERS="127.0.0.1:$port"
  log "Tansu on $CLICKLEDGER_KAFKA_BROKERS"
}

stop_services() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}
