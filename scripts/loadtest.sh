#!/usr/bin/env bash
# Load test (make loadtest): start a simulated worker on a free loopback port
# with a temporary store, run bin/loadtest against it, stop the worker, and
# exit with loadtest's status (non-zero on any data error or RPC error other
# than overload).
#
# Environment (defaults in brackets):
#   LOADTEST_CLIENTS [64]  LOADTEST_DURATION [30s]  LOADTEST_CHUNK_BYTES [1MiB]
#   LOADTEST_MIX [process=50,download=30,list=10,health=10]
#   LOADTEST_MAX_CONCURRENT [the worker's default: CPU count]
#   LOADTEST_MAX_QUEUED [64: every client can wait for a slot; lower it to
#                        exercise overload refusals]
#   LOADTEST_ARGS       extra loadtest flags, e.g. "-conns 4 -chunks 16"
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$PWD/bin}
CLIENTS=${LOADTEST_CLIENTS:-64}
DURATION=${LOADTEST_DURATION:-30s}
CHUNK=${LOADTEST_CHUNK_BYTES:-1MiB}
MIX=${LOADTEST_MIX:-process=50,download=30,list=10,health=10}
QUEUED=${LOADTEST_MAX_QUEUED:-64}

go build -o "$BIN/" ./cmd/worker ./cmd/loadtest

tmp=$(mktemp -d "${TMPDIR:-/tmp}/videoshard-loadtest.XXXXXX")
pid=""
cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

{
	echo "listen: 127.0.0.1:0"
	echo "encoder: simulated"
	echo "shutdown_grace: 10s"
	echo "storage: {root: $tmp/store}"
	echo "simulated: {ratio: 0.5}"
	echo "limits:"
	echo "  max_queued_tasks: $QUEUED"
	if [[ -n "${LOADTEST_MAX_CONCURRENT:-}" ]]; then
		echo "  max_concurrent_tasks: $LOADTEST_MAX_CONCURRENT"
	fi
	# Every writer may wait for a slot (the default admits one unary call per
	# slot, to bound memory with 64 MiB messages; these chunks are small).
	admitted=$((QUEUED + ${LOADTEST_MAX_CONCURRENT:-$(nproc)}))
	echo "  max_unary_chunks: $admitted"
	echo "  max_uploads: $admitted"
} >"$tmp/worker.yaml"

"$BIN/worker" --config "$tmp/worker.yaml" 2>"$tmp/worker.log" &
pid=$!

addr=""
for _ in $(seq 300); do # 30 s
	addr=$(grep -o 'addr=127\.0\.0\.1:[0-9]*' "$tmp/worker.log" | head -n1 | cut -d= -f2 || true)
	[[ -n "$addr" ]] && break
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "loadtest: the worker exited at start-up:" >&2
		cat "$tmp/worker.log" >&2
		exit 1
	fi
	sleep 0.1
done
if [[ -z "$addr" ]]; then
	echo "loadtest: the worker did not start in 30 s" >&2
	cat "$tmp/worker.log" >&2
	exit 1
fi
echo "loadtest: worker pid $pid on $addr, store $tmp/store"

rc=0
# shellcheck disable=SC2086 # LOADTEST_ARGS is a list of flags
"$BIN/loadtest" -addr "$addr" -pid "$pid" -clients "$CLIENTS" -duration "$DURATION" \
	-chunk-bytes "$CHUNK" -mix "$MIX" ${LOADTEST_ARGS:-} || rc=$?

# Graceful stop, bounded: SIGTERM, then SIGKILL after 30 s.
kill -TERM "$pid"
for _ in $(seq 300); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
	echo "loadtest: the worker did not stop on SIGTERM in 30 s" >&2
	rc=1
fi
wait "$pid" 2>/dev/null || { echo "loadtest: the worker exited with status $?" >&2; rc=1; }
pid=""

errors=$(grep -c 'level=ERROR' "$tmp/worker.log" || true)
echo "loadtest: worker log: $(wc -l <"$tmp/worker.log") lines, $errors at level ERROR"
if [[ "$errors" != 0 ]]; then
	grep 'level=ERROR' "$tmp/worker.log" | head -n 20 >&2
	rc=1
fi
exit "$rc"
