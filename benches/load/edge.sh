#!/usr/bin/env bash
# Load test of the tracking edge over loopback, bounded in time: every run lasts $DURATION
# seconds (default 8) and talks only to 127.0.0.1. Measures, in one run:
#   - the ceiling: a bare hyper server answering the same 302 and recording nothing;
#   - the edge on the embedded log: clicks/s and postbacks/s with wrk, p50/p99;
#   - the edge on Kafka (Tansu): the same, and a plain rdkafka producer against the same broker;
#   - latency at half of the maximum click rate (oha, coordinated-omission corrected);
#   - RSS of the edge under twice the maximum click rate.
# Needs wrk and oha (apt-get install wrk; cargo install oha). Prints a Markdown summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/services.sh
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-64}
REPEAT=${REPEAT:-3}
ensure_tansu
cargo build --release -q -p clickledger-benches --bins
bin=target/release
work=$(mktemp -d "${TMPDIR:-/tmp}/clickledger-load.XXXXXX")
server_pid=""
stop_server() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; fi; }
cleanup() { stop_server; stop_services; rm -rf "$work"; }
trap cleanup EXIT INT TERM

CLICK="/c?offer=summer&member=jane"
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; return 1; }
# wrk_run PORT PATH [SCRIPT] -> "rps p50_ms p99_ms"
wrk_run() {
  local out
  if [ -n "${3:-}" ]; then out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$3" "http://127.0.0.1:$1"); else out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$1$2"); fi
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $p50 $p99"
}
# oha_rate PORT PATH RATE SECONDS CONNECTIONS -> "achieved_rps p50_ms p99_ms"
oha_rate() {
  oha --no-tui --output-format json -z "${4}s" -c "$5" -q "$3" --latency-correction "http://127.0.0.1:$1$2" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); s=r["summary"]; p=r["latencyPercentiles"]; print(int(s["requestsPerSec"]), round(p["p50"]*1000,2), round(p["p99"]*1000,2))'
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo "## Edge load test ($(date -u +%Y-%m-%dT%H:%MZ), ${DURATION}s per run, ${CONNECTIONS} connections, wrk -t1)"
echo

# Ceiling and edge side by side; the click comparison alternates between them $REPEAT times
# and keeps the medians, because one run on this machine can swing by 10%.
$bin/bare_redirect --listen 127.0.0.1:18090 & bare_pid=$!
$bin/edge_server --listen 127.0.0.1:18080 --log-file "$work/embedded/log.db" & server_pid=$!
wait_up 18090
wait_up 18080
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bare_runs=""; edge_runs=""
for _ in $(seq 1 "$REPEAT"); do
  read -r rps p50 p99 <<<"$(wrk_run 18090 "$CLICK")"; bare_runs="$bare_runs $rps"; bare_p50=$p50; bare_p99=$p99
  read -r rps p50 p99 <<<"$(wrk_run 18080 "$CLICK")"; edge_runs="$edge_runs $rps"; emb_click_p50=$p50; emb_click_p99=$p99
done
kill "$bare_pid"; wait "$bare_pid" 2>/dev/null || true
bare_rps=$(tr ' ' '\n' <<<"$bare_runs" | grep . | median)
emb_click_rps=$(tr ' ' '\n' <<<"$edge_runs" | grep . | median)
read -r emb_pb_rps emb_pb_p50 emb_pb_p99 <<<"$(wrk_run 18080 / benches/load/postback.lua)"
half=$((emb_click_rps / 2))
read -r emb_half_rps emb_half_p50 emb_half_p99 <<<"$(oha_rate 18080 "$CLICK" "$half" "$DURATION" 32)"
pb_half=$((emb_pb_rps / 2))
read -r emb_pbhalf_rps emb_pbhalf_p50 emb_pbhalf_p99 <<<"$(oha_rate 18080 "/pb?code=JANE20&order_id=H&amount=1&token=acme-postback-secret-0001" "$pb_half" "$DURATION" 32)"
# Twice the maximum click rate, with many connections; sample RSS every second.
rss_start=$(rss_kb "$server_pid")
oha --no-tui --output-format quiet -z "$((DURATION * 2))s" -c 512 -q $((emb_click_rps * 2)) "http://127.0.0.1:18080$CLICK" &
load_pid=$!
rss_max=$rss_start
rss_samples=""
while kill -0 "$load_pid" 2>/dev/null; do
  sleep 1
  now=$(rss_kb "$server_pid"); rss_samples="$rss_samples $((now / 1024))"
  [ "$now" -gt "$rss_max" ] && rss_max=$now
done
rss_end=$(rss_kb "$server_pid")
unacked=$(curl -s http://127.0.0.1:18080/metrics | awk '/^clickledger_ingest_unacknowledged_total/ {sum += $2} END {print sum + 0}')
lost=$(curl -s http://127.0.0.1:18080/metrics | awk '/^clickledger_ingest_lost_total/ {sum += $2} END {print sum + 0}')
stop_server

# The same half-rate latency with synchronous = NORMAL (durable across a process crash only).
$bin/edge_server --listen 127.0.0.1:18080 --log-file "$work/normal/log.db" --durability normal & server_pid=$!
wait_up 18080
read -r normal_half_rps normal_half_p50 normal_half_p99 <<<"$(oha_rate 18080 "$CLICK" "$half" "$DURATION" 32)"
stop_server

start_tansu "$work/tansu" 2>/dev/null
brokers=$CLICKLEDGER_KAFKA_BROKERS
plain=$($bin/plain_producer --brokers "$brokers" --seconds "$DURATION" --in-flight "$CONNECTIONS" --record-bytes 480 --linger-ms 1 --topic bench.plain | awk '{printf "%d", $(NF-1)}')
$bin/edge_server --listen 127.0.0.1:18080 --kafka-brokers "$brokers" --topic-prefix load. & server_pid=$!
wait_up 18080
read -r k_click_rps k_click_p50 k_click_p99 <<<"$(wrk_run 18080 "$CLICK")"
read -r k_pb_rps k_pb_p50 k_pb_p99 <<<"$(wrk_run 18080 / benches/load/postback.lua)"
k_half=$((k_click_rps / 2))
read -r k_half_rps k_half_p50 k_half_p99 <<<"$(oha_rate 18080 "$CLICK" "$k_half" "$DURATION" 32)"
stop_server

pct() { python3 -c "print(round(100 * $1 / $2))"; }
echo "| run | requests/s | p50 | p99 | ratio |"
echo "|---|---|---|---|---|"
echo "| bare hyper 302 (ceiling), median of$bare_runs | $bare_rps | $bare_p50 | $bare_p99 | 100% |"
echo "| edge, embedded log, clicks, median of$edge_runs | $emb_click_rps | $emb_click_p50 | $emb_click_p99 | $(pct "$emb_click_rps" "$bare_rps")% of bare |"
echo "| edge, embedded log, postbacks | $emb_pb_rps | $emb_pb_p50 | $emb_pb_p99 | $(pct "$emb_pb_rps" "$bare_rps")% of bare |"
echo "| plain rdkafka producer → Tansu (records/s, baseline) | $plain | | | 100% |"
echo "| edge, Kafka (Tansu), clicks | $k_click_rps | $k_click_p50 | $k_click_p99 | $(pct "$k_click_rps" "$plain")% of plain producer |"
echo "| edge, Kafka (Tansu), postbacks | $k_pb_rps | $k_pb_p50 | $k_pb_p99 | $(pct "$k_pb_rps" "$plain")% of plain producer |"
echo
echo "| at half the maximum rate (oha -q, latency-corrected) | target rate | achieved/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
echo "| embedded, clicks | $half | $emb_half_rps | $emb_half_p50 | $emb_half_p99 |"
echo "| embedded with synchronous = NORMAL, clicks | $half | $normal_half_rps | $normal_half_p50 | $normal_half_p99 |"
echo "| embedded, postbacks | $pb_half | $emb_pbhalf_rps | $emb_pbhalf_p50 | $emb_pbhalf_p99 |"
echo "| Kafka (Tansu), clicks | $k_half | $k_half_rps | $k_half_p50 | $k_half_p99 |"
echo
echo "Overload: $((emb_click_rps * 2)) clicks/s offered for $((DURATION * 2))s over 512 connections to the embedded edge."
echo "RSS MiB: start $((rss_start / 1024)), max $((rss_max / 1024)), end $((rss_end / 1024)); per second:$rss_samples."
echo "Clicks answered before the log acknowledged them (unacknowledged): $unacked; refused by the log (lost): $lost."
