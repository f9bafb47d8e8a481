#!/usr/bin/env bash
# bench.sh runs the benchmarks behind the figures in the issues and prints
# them as a summary. Every figure is a ratio against a reference run side by
# side in the same process, in interleaved rounds, reported as medians.
#
#   ffmpeg   grpcapi BenchmarkFFmpegProcessChunkVsDirect  ProcessChunk of a 10 s 720p clip / the same
#                                                         ffmpeg command run directly      (<= 1.05)
#   ingest   grpcapi BenchmarkSimulatedIngest64MiB        64 MiB chunk, unary and streamed, MB/s /
#                                                         write+fsync of 64 MiB            (>= 0.7);
#                                                         unary / the ideal: a discarding server's call
#                                                         plus write+fsync of the kept 32 MiB (>= 0.9)
#            grpcapi BenchmarkSimulatedIngestBreakdown    the same gap split: gRPC alone, pipeline
#                                                         alone, the two SHA-256 passes alone
#   getshard grpcapi BenchmarkGetShard64MiB               GetShard of a 64 MiB shard, CRC-32C verified /
#                                                         the same bytes from memory by a server that
#                                                         does nothing else                (>= 0.8)
#   download cmd/worker BenchmarkDownloadShard1GiB        DownloadShard of a 1 GiB shard from the real
#                                                         worker to the master's client (master/client):
#                                                         MB/s / disk read+sha256 (>= 0.8), and the
#                                                         worker's RSS growth (< 64 MiB); also a bulk
#                                                         client of gRPC's codec, and gRPC's defaults
#   replicate grpcapi BenchmarkReplicateShard256MiB       worker-to-worker ReplicateShard of a 256 MiB shard on
#                                                         loopback / master/client's DownloadShard of it into a
#                                                         file + fsync, both orders each round (>= 0.8)
#   limits   cmd/worker BenchmarkHonestUnderSlowloris      64 honest clients beside 64 stalled uploads: p99
#                                                         latency / the same load alone    (<= 2), refused (0)
#            cmd/worker BenchmarkWorkerRSSWorstAdmitted   the worker's peak RSS under the worst load its
#                                                         default limits admit / README's bound (<= 1)
#   master   cmd/master BenchmarkMasterEncodeVsWholeFile  `master encode` of a 30 s 720p clip across two
#                                                         local ffmpeg workers / one ffmpeg over the whole
#                                                         file, same codec, CRF, preset: wall (<= 1.15),
#                                                         output size (<= 1.05), PSNR vs the source
#                                                         (master - whole file >= -0.2 dB)
#   longgop  cmd/master BenchmarkMasterLongGOP            60 s 720p with one keyframe / the same with a keyframe
#                                                         every 2 s, 4 s segments: wall (<= 1.25), chunks (>= 12)
#   verify   cmd/master BenchmarkMasterVerifyCost         the master job with --verify sample / off (<= 1.03), full /
#                                                         off (<= 1.15); split proof's share of the wall (<= 10%)
#   state    master BenchmarkStateSave                     one Record+Save of a job's chunk map at 7, 1,800 and 7,200
#                                                         chunks, journal / the whole-file rewrite it replaced: ns/op
#                                                         and bytes written per save (optional: a failure is skipped)
#   farm     cmd/master BenchmarkMasterFarm               a 2-hour 320x180 source across 16 simulated workers (200 ms a
#                                                         chunk) in 16, 4 and 1 s chunks: makespan / (ideal + the master's
#                                                         one decode) (<= 1.3), master ms per chunk beyond that decode
#                                                         (<= 5), first chunk's start (<= 5 s) (optional, ~6 min; not
#                                                         in the default set)
#   repair   cmd/master BenchmarkRepairLostWorker          a worker holding half of a video's 2 GiB of shards (R=2, 4 simulated
#                                                         workers) lost: `master repair` wall and copy MB/s onto the 3
#                                                         survivors with --parallel 1, 2, 3 (optional, ~5 min; not in the
#                                                         default set)
#   share    cmd/master BenchmarkMasterCPUShare           3-minute 480p job, 2 ffmpeg workers at veryfast: master CPU /
#                                                         workers' CPU (<= 0.05), lowest worker busy share (>= 95%)
#                                                         (optional, not in the default set)
#   index    cmd/worker BenchmarkStore1M                  1,000,000 chunks, SQLite index: Open with a clean index (<= 3 s),
#                                                         beside the full rebuild from JSON; ListShards of a 10,000-chunk
#                                                         video and pages of 1,000: p50, p99 (<= 50 ms) (optional, ~10 min
#                                                         and ~9 GB in TMPDIR; not in the default set)
#            grpcapi BenchmarkProcessChunkIndex           ProcessChunk MB/s, 1 MiB simulated chunks, SQLite index / memory
#                                                         index (>= 0.9)
#   extra    storage BenchmarkCommit64MiB, encode BenchmarkSimulated64MiB and
#            BenchmarkFFmpegDirectVsEncoder (ns/op pairs, no interleaving)
#
# Usage: scripts/bench.sh [ffmpeg|ingest|getshard|download|replicate|limits|master|longgop|verify|state|farm|repair|share|index|extra|profile ...]   (default: all but farm, repair, share, index, profile)
# Environment:
#   BENCH_OUT=DIR                         where raw outputs and profiles go (default: a new temp dir)
#   BENCH_PROFILE=1                       also CPU-profile the simulated unary and streamed ingest
#   VIDEOSHARD_BENCH_FFMPEG_PAIRS=N       direct/rpc pairs (default 5)
#   VIDEOSHARD_BENCH_INGEST_ROUNDS=N      ingest rounds (default 15)
#   VIDEOSHARD_BENCH_GETSHARD_ROUNDS=N    getshard rounds (default 15)
#   VIDEOSHARD_BENCH_DOWNLOAD_ROUNDS=N    download rounds, one fresh worker each (default 3)
#   VIDEOSHARD_BENCH_REPLICATE_ROUNDS=N   replicate rounds, each both orders (default 5)
#   VIDEOSHARD_BENCH_SLOWLORIS_ROUNDS=N   slowloris rounds, alone and under attack each (default 5)
#   VIDEOSHARD_BENCH_RSS_ROUNDS=N         worst-admitted-load rounds, one fresh worker each (default 3)
#   VIDEOSHARD_BENCH_MASTER_ROUNDS=N      master/whole-file rounds (default 3)
#   VIDEOSHARD_BENCH_MASTER_SEGMENT=S     the master's --segment-seconds (default 5)
#   VIDEOSHARD_BENCH_MASTER_SLOTS=N       each worker's max_concurrent_tasks (default 1)
#   VIDEOSHARD_BENCH_MASTER_SOURCE_CRF=N  the master, longgop and verify sources' libx264 CRF (default 12, a mezzanine)
#   VIDEOSHARD_BENCH_MASTER_VERIFY=MODE   the master's --verify in the master and longgop parts (default sample)
#   VIDEOSHARD_BENCH_LONGGOP_ROUNDS=N, VIDEOSHARD_BENCH_VERIFY_ROUNDS=N   rounds (default 3 each)
#   VIDEOSHARD_BENCH_REPAIR_BYTES=N       the repair part's video, shard bytes of one copy (default 2147483648)
#   VIDEOSHARD_BENCH_REPAIR_ROUNDS=N      repair rounds, each --parallel 1, 2, 3 (default 1)
#   VIDEOSHARD_BENCH_STATE_ROUNDS=N       state rounds, -count (default 5); VIDEOSHARD_BENCH_STATE_TIME=D their -benchtime (default 3s)
# Needs ffmpeg and ffprobe (the ffmpeg, master and extra parts), ~4 GiB free in TMPDIR, and
# about 3-5 minutes on a 2-core machine, plus 4-5 minutes for the master part.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

parts=("$@")
if [ ${#parts[@]} -eq 0 ]; then
	parts=(ffmpeg ingest getshard download replicate limits master longgop verify state extra)
	[ "${BENCH_PROFILE:-}" = 1 ] && parts+=(profile)
fi
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

for p in "${parts[@]}"; do
	case $p in ffmpeg | ingest | getshard | download | replicate | limits | master | longgop | verify | state | farm | repair | share | index | extra | profile) ;; *)
		echo "bench.sh: unknown part '$p' (want ffmpeg, ingest, getshard, download, replicate, limits, master, longgop, verify, state, farm, repair, share, index, extra, profile)" >&2
		exit 2
		;;
	esac
done
if want ffmpeg || want master || want longgop || want verify || want extra; then
	for bin in ffmpeg ffprobe; do
		command -v "$bin" >/dev/null || {
			echo "bench.sh: $bin not found; install ffmpeg (scripts/ensure-deps.sh) or run: scripts/bench.sh ingest getshard download" >&2
			exit 1
		}
	done
fi

out=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/videoshard-bench.XXXXXX")}
mkdir -p "$out"
echo "raw outputs in $out"

# bench NAME PKG PATTERN [go test flags...]: run benchmarks, tee to $out/NAME.txt;
# a failure stops the script. bench_optional: a failure is reported and skipped.
failed=()
bench() {
	local name=$1 pkg=$2 pattern=$3
	shift 3
	echo
	echo "== $name: go test -run '^\$' -bench '$pattern' $* $pkg"
	if ! $GO test -run '^$' -bench "$pattern" -timeout 60m "$@" "$pkg" 2>&1 | tee "$out/$name.txt"; then
		echo "bench.sh: $name failed (output in $out/$name.txt)" >&2
		return 1
	fi
}
bench_required() { bench "$@" || exit 1; }
bench_optional() { bench "$@" || failed+=("$1"); }

# metric FILE BENCHMARK UNIT: the value reported for UNIT on BENCHMARK's line.
metric() {
	awk -v b="$2" -v u="$3" '
		$1 ~ ("^" b "(-[0-9]+)?$") {
			for (i = 3; i <= NF; i++) if ($i == u) { print $(i - 1); exit }
		}' "$1"
}

# verdict VALUE OP TARGET: "ok" or "MISS".
verdict() {
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "") { print "n/a"; exit }
		ok = (op == "<=" && v + 0 <= t + 0) || (op == ">=" && v + 0 >= t + 0) || (op == "<" && v + 0 < t + 0)
		print (ok ? "ok" : "MISS")
	}'
}

if want ffmpeg; then
	bench_required ffmpeg ./grpcapi/ 'BenchmarkFFmpegProcessChunkVsDirect$' -benchtime=1x
fi
if want ingest; then
	bench_required ingest ./grpcapi/ 'BenchmarkSimulatedIngest64MiB$|BenchmarkSimulatedIngestBreakdown$' -benchtime=1x
fi
if want getshard; then
	bench_required getshard ./grpcapi/ 'BenchmarkGetShard64MiB$' -benchtime=1x
fi
if want download; then
	bench_required download ./cmd/worker/ 'BenchmarkDownloadShard1GiB$' -benchtime=1x
fi
if want replicate; then
	bench_required replicate ./grpcapi/ 'BenchmarkReplicateShard256MiB$' -benchtime=1x
fi
if want limits; then
	bench_required limits ./cmd/worker/ 'BenchmarkHonestUnderSlowloris$|BenchmarkWorkerRSSWorstAdmitted$' -benchtime=1x
fi
if want master; then
	bench_required master ./cmd/master/ 'BenchmarkMasterEncodeVsWholeFile$' -benchtime=1x
fi
if want longgop; then
	bench_required longgop ./cmd/master/ 'BenchmarkMasterLongGOP$' -benchtime=1x
fi
if want verify; then
	bench_required verify ./cmd/master/ 'BenchmarkMasterVerifyCost$' -benchtime=1x
fi
if want state; then
	bench_optional state ./master/ 'BenchmarkStateSave$' -benchtime="${VIDEOSHARD_BENCH_STATE_TIME:-3s}" -count="${VIDEOSHARD_BENCH_STATE_ROUNDS:-5}"
fi
if want farm; then
	bench_optional farm ./cmd/master/ 'BenchmarkMasterFarm$' -benchtime=1x -timeout 60m
fi
if want repair; then
	bench_optional repair ./cmd/master/ 'BenchmarkRepairLostWorker$' -benchtime=1x -timeout 60m
fi
if want share; then
	bench_optional share ./cmd/master/ 'BenchmarkMasterCPUShare$' -benchtime=1x -timeout 30m
fi
if want index; then
	bench_required index ./cmd/worker/ 'BenchmarkStore1M$' -benchtime=1x -timeout 60m
	bench_required index-write ./grpcapi/ 'BenchmarkProcessChunkIndex$' -benchtime=1x
fi
if want extra; then
	bench_optional storage ./storage/ 'BenchmarkCommit64MiB$' -benchtime=10x -count=3
	bench_optional encode ./encode/ 'BenchmarkSimulated64MiB$|BenchmarkFFmpegDirectVsEncoder$' -benchtime=3x -count=1
fi
if want profile; then
	for path in Unary Stream; do
		bench_required "profile-$path" ./grpcapi/ "BenchmarkSimulated${path}64MiB\$" -benchtime=30x \
			-cpuprofile "$out/ingest-$path.cpu.prof" -o "$out/grpcapi.test"
		echo "-- pprof -top ($path)"
		$GO tool pprof -top -nodecount=30 "$out/grpcapi.test" "$out/ingest-$path.cpu.prof" 2>/dev/null | sed -n '4,40p'
		echo "-- pprof -top -cum, worker-side frames ($path)"
		$GO tool pprof -top -cum -nodecount=30 -focus 'Handler|grpcapi|storage|encode' \
			"$out/grpcapi.test" "$out/ingest-$path.cpu.prof" 2>/dev/null | sed -n '6,40p'
	done
fi

# ---------------------------------------------------------------------------
echo
echo "================================ summary (medians) ================================"
row() { printf '%-46s %-24s %-26s %-7s %-9s %s\n' "$@"; }
int() { awk -v v="$1" 'BEGIN { printf "%d", v + 0.5 }'; }
row "figure" "measured" "reference" "ratio" "target" "verdict"
if want ffmpeg; then
	f=$out/ffmpeg.txt B=BenchmarkFFmpegProcessChunkVsDirect
	r=$(metric "$f" $B ratio)
	row "ffmpeg ProcessChunk/direct ($(int "$(metric "$f" $B pairs)") pairs)" \
		"rpc $(metric "$f" $B rpc-s) s" "direct $(metric "$f" $B direct-s) s" "$r" "<= 1.05" "$(verdict "$r" '<=' 1.05)"
	row "  ffmpeg run inside the worker" "$(metric "$f" $B rpc-ffmpeg-s) s" "" "" "" ""
fi
if want ingest; then
	f=$out/ingest.txt B=BenchmarkSimulatedIngest64MiB
	n=$(int "$(metric "$f" $B rounds)")
	u=$(metric "$f" $B unary/ref) s=$(metric "$f" $B stream/ref)
	row "simulated ingest 64 MiB, unary ($n rounds)" "$(metric "$f" $B unary-MB/s) MB/s" \
		"write+fsync $(metric "$f" $B ref-MB/s) MB/s" "$u" ">= 0.7" "$(verdict "$u" '>=' 0.7)"
	row "simulated ingest 64 MiB, streamed 1 MiB" "$(metric "$f" $B stream-MB/s) MB/s" \
		"write+fsync $(metric "$f" $B ref-MB/s) MB/s" "$s" ">= 0.7" "$(verdict "$s" '>=' 0.7)"
	i=$(metric "$f" $B unary/ideal)
	row "  unary / ideal" "$(metric "$f" $B unary-MB/s) MB/s" \
		"ideal $(metric "$f" $B ideal-MB/s) MB/s" "$i" ">= 0.9" "$(verdict "$i" '>=' 0.9)"
	row "  unary / ideal, min-max over the rounds" "$(metric "$f" $B unary/ideal-min)-$(metric "$f" $B unary/ideal-max)" "" "" "" ""
	row "  unary / ideal, from the median times" "" "" "$(metric "$f" $B unary/ideal-of-medians)" "" ""
	row "  streamed / ideal" "$(metric "$f" $B stream-MB/s) MB/s" \
		"gRPC alone $(metric "$f" $B discard-stream-MB/s) MB/s" "$(metric "$f" $B stream/ideal)" "" ""
	row "  ideal: gRPC alone / kept write+fsync" "$(metric "$f" $B discard-unary-MB/s) MB/s" \
		"$(metric "$f" $B kept-MB/s) MB/s" "" "" ""
	row "  unary: handler / gRPC (ms)" "$(metric "$f" $B unary-handler-ms) / $(metric "$f" $B unary-grpc-ms)" "" "" "" ""
	row "  streamed: handler / in RecvMsg (ms)" "$(metric "$f" $B stream-handler-ms) / $(metric "$f" $B stream-recv-ms)" "" "" "" ""
	row "  chunks (VIDEOSHARD_BENCH_INGEST_CHUNKS)" "${VIDEOSHARD_BENCH_INGEST_CHUNKS:-replace}" "" "" "" ""
	B=BenchmarkSimulatedIngestBreakdown
	for leg in grpc-unary grpc-stream pipeline sha256x2; do
		row "  breakdown: $leg alone" "$(metric "$f" $B "$leg-MB/s") MB/s" \
			"write+fsync $(metric "$f" $B ref-MB/s) MB/s" "$(metric "$f" $B "$leg/ref")" "" ""
	done
fi
if want getshard; then
	f=$out/getshard.txt B=BenchmarkGetShard64MiB
	r=$(metric "$f" $B getshard/ref)
	row "GetShard 64 MiB, crc32c ($(int "$(metric "$f" $B rounds)") rounds)" \
		"$(metric "$f" $B getshard-MB/s) MB/s" "from memory $(metric "$f" $B ref-MB/s) MB/s" "$r" ">= 0.8" "$(verdict "$r" '>=' 0.8)"
	row "  ratio min-max over the rounds" "$(metric "$f" $B getshard/ref-min)-$(metric "$f" $B getshard/ref-max)" "" "" "" ""
	row "  metadata without crc32c (sha256)" "$(metric "$f" $B sha256-MB/s) MB/s" "" "$(metric "$f" $B sha256/ref)" "" ""
	row "  handler ms (crc32c / sha256)" "$(metric "$f" $B handler-ms) / $(metric "$f" $B sha256-handler-ms)" "" "" "" ""
fi
if want download; then
	f=$out/download.txt B=BenchmarkDownloadShard1GiB
	g=$(metric "$f" $B rss-growth-max-MiB) d=$(metric "$f" $B download/ref)
	row "DownloadShard 1 GiB ($(int "$(metric "$f" $B rounds)") rounds)" "$(metric "$f" $B download-MB/s) MB/s" \
		"read+sha256 $(metric "$f" $B ref-MB/s) MB/s" "$d" ">= 0.8" "$(verdict "$d" '>=' 0.8)"
	row "  ratio min-max over the rounds" "$(metric "$f" $B download/ref-min)-$(metric "$f" $B download/ref-max)" "" "" "" ""
	row "  gRPC codec bulk client / gRPC defaults" "" "" "$(metric "$f" $B stock-bulk/ref) / $(metric "$f" $B default-client/ref)" "" ""
	row "  CPU for the download: worker / client" "$(metric "$f" $B worker-cpu-s) / $(metric "$f" $B client-cpu-s) s" "" "" "" ""
	row "  worker RSS growth (median; max)" "$(metric "$f" $B rss-growth-MiB); $g MiB" \
		"base $(metric "$f" $B rss-base-MiB) MiB" "" "< 64 MiB" "$(verdict "$g" '<' 64)"
	row "  worker peak RSS" "$(metric "$f" $B rss-peak-MiB) MiB" "" "" "" ""
fi
if want replicate; then
	f=$out/replicate.txt B=BenchmarkReplicateShard256MiB
	r=$(metric "$f" $B replicate/download)
	row "ReplicateShard 256 MiB ($(int "$(metric "$f" $B rounds)") rounds)" "$(metric "$f" $B replicate-MB/s) MB/s" \
		"download+fsync $(metric "$f" $B download-MB/s) MB/s" "$r" ">= 0.8" "$(verdict "$r" '>=' 0.8)"
fi
if want limits; then
	f=$out/limits.txt B=BenchmarkHonestUnderSlowloris
	r=$(metric "$f" $B p99-attack/alone) n=$(metric "$f" $B refused-under-attack)
	row "honest p99 under 64 stalled uploads ($(int "$(metric "$f" $B rounds)") rounds)" "$(metric "$f" $B attack-p99-ms) ms" \
		"alone $(metric "$f" $B alone-p99-ms) ms" "$r" "<= 2" "$(verdict "$r" '<=' 2)"
	row "  honest calls refused under attack" "$n" "alone $(metric "$f" $B refused-alone)" "" "0" "$(verdict "$n" '<=' 0)"
	B=BenchmarkWorkerRSSWorstAdmitted
	m=$(metric "$f" $B rss-peak-max-MiB) l=$(metric "$f" $B bound-MiB)
	row "worker peak RSS, worst admitted load (max)" "$m MiB" "README bound $l MiB" \
		"$(awk -v a="$m" -v b="$l" 'BEGIN { if (b > 0) printf "%.2f", a / b }')" "<= 1" "$(verdict "$m" '<=' "$l")"
fi
if want master; then
	f=$out/master.txt B=BenchmarkMasterEncodeVsWholeFile
	r=$(metric "$f" $B wall-ratio) z=$(metric "$f" $B size-ratio) d=$(metric "$f" $B psnr-delta-dB)
	row "master encode/whole-file ffmpeg ($(int "$(metric "$f" $B rounds)") rounds)" \
		"master $(metric "$f" $B master-s) s" "ffmpeg $(metric "$f" $B ref-s) s" "$r" "<= 1.15" "$(verdict "$r" '<=' 1.15)"
	row "  output size ($(int "$(metric "$f" $B chunks)") chunks)" "$(metric "$f" $B master-MB) MB" \
		"$(metric "$f" $B ref-MB) MB" "$z" "<= 1.05" "$(verdict "$z" '<=' 1.05)"
	row "  PSNR vs source (delta in dB)" "$(metric "$f" $B psnr-master-dB) dB" \
		"$(metric "$f" $B psnr-ref-dB) dB" "$d" ">= -0.2" "$(verdict "$d" '>=' -0.2)"
	row "  CPU s, workers' ffmpeg included" "$(metric "$f" $B master-cpu-s) s" "$(metric "$f" $B ref-cpu-s) s" \
		"$(metric "$f" $B cpu-ratio)" "" ""
	row "  master phases: head/encode/tail s" \
		"$(metric "$f" $B head-s) / $(metric "$f" $B encode-phase-s) / $(metric "$f" $B tail-s)" \
		"worker idle $(metric "$f" $B worker-idle-s) s" "" "" ""
	v=$(metric "$f" $B verified-share)
	row "  master's verification OK (share of rounds)" "$v" "" "" "1" "$(verdict "$v" '>=' 1)"
fi
if want longgop; then
	f=$out/longgop.txt B=BenchmarkMasterLongGOP
	r=$(metric "$f" $B wall-ratio)
	row "single keyframe/keyframe every 2 s (60 s)" "$(metric "$f" $B single-key-s) s" \
		"$(metric "$f" $B every-2s-s) s" "$r" "<= 1.25" "$(verdict "$r" '<=' 1.25)"
	c=$(metric "$f" $B chunks)
	row "  chunks of the single-keyframe source" "$(int "$c")" "" "" ">= 12" "$(verdict "$c" '>=' 12)"
	row "  split s (single keyframe / every 2 s)" "$(metric "$f" $B split-single-key-s) s" \
		"$(metric "$f" $B split-every-2s-s) s" "" "" ""
fi
if want verify; then
	f=$out/verify.txt B=BenchmarkMasterVerifyCost
	a=$(metric "$f" $B sample/off) b=$(metric "$f" $B full/off) c=$(metric "$f" $B proof-share)
	row "--verify=sample/off (30 s 720p job)" "$(metric "$f" $B sample-s) s" "$(metric "$f" $B off-s) s" \
		"$a" "<= 1.03" "$(verdict "$a" '<=' 1.03)"
	row "--verify=full/off" "$(metric "$f" $B full-s) s" "$(metric "$f" $B off-s) s" "$b" "<= 1.15" "$(verdict "$b" '<=' 1.15)"
	row "  split proof, share of the job's wall" "$c" "" "" "<= 0.10" "$(verdict "$c" '<=' 0.10)"
fi
if want state; then
	# Medians over the -count rounds, each size's pair run side by side.
	state_med() { sort -g | awk '{a[NR] = $1} END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
	state_metric() { awk -v b="$1" -v u="$2" '$1 ~ ("^" b "(-[0-9]+)?$") { for (i = 3; i <= NF; i++) if ($i == u) print $(i - 1) }' "$out/state.txt" | state_med; }
	for n in 7 1800 7200; do
		B=BenchmarkStateSave/chunks=$n
		j=$(state_metric "$B/journal" ns/op) w=$(state_metric "$B/rewrite" ns/op)
		if [ -z "$j" ] || [ -z "$w" ]; then
			row "chunk map save, $n chunks" "failed" "" "" "" ""
			continue
		fi
		row "chunk map Record+Save, $n chunks" "$(awk -v v="$j" 'BEGIN { printf "%.3f ms", v / 1e6 }')" \
			"$(awk -v v="$w" 'BEGIN { printf "rewrite %.3f ms", v / 1e6 }')" "$(awk -v a="$j" -v b="$w" 'BEGIN { printf "%.3f", a / b }')" "" ""
		row "  bytes written per save" "$(int "$(state_metric "$B/journal" B/save)") B" \
			"rewrite $(int "$(state_metric "$B/rewrite" B/save)") B" "" "" ""
	done
fi
if want farm; then
	f=$out/farm.txt B=BenchmarkMasterFarm
	for seg in 16 4 1; do
		r=$(metric "$f" $B "makespan/ideal+read_${seg}s") c=$(metric "$f" $B "master-ms/chunk_${seg}s") t=$(metric "$f" $B "first-chunk-s_${seg}s")
		row "farm, ${seg} s chunks: makespan/(ideal+decode)" "" "" "$r" "<= 1.3" "$(verdict "$r" '<=' 1.3)"
		row "  master ms per chunk beyond the decode" "$c" "" "" "<= 5" "$(verdict "$c" '<=' 5)"
		row "  first chunk's encode starts at" "$t s" "" "" "<= 5 s" "$(verdict "$t" '<=' 5)"
	done
fi
if want repair; then
	f=$out/repair.txt B=BenchmarkRepairLostWorker
	for p in 1 2 3; do
		row "repair of a lost worker, --parallel $p" "$(metric "$f" $B "copy-MB/s_p$p") MB/s" \
			"wall $(metric "$f" $B "wall-s_p$p") s" "" "" ""
	done
	row "  copied ($(metric "$f" $B repaired-MB) MB): --parallel 3 / 1" "" "" "$(metric "$f" $B copy-p3/p1)" "" ""
fi
if want share; then
	f=$out/share.txt B=BenchmarkMasterCPUShare
	r=$(metric "$f" $B master/workers-cpu) b=$(metric "$f" $B lowest-busy-%)
	row "3-min 480p job: master CPU / workers' CPU" "" "" "$r" "<= 0.05" "$(verdict "$r" '<=' 0.05)"
	row "  lowest worker busy %" "$b" "" "" ">= 95" "$(verdict "$b" '>=' 95)"
fi
if want index; then
	f=$out/index.txt B=BenchmarkStore1M
	o=$(metric "$f" $B open-s)
	row "1M chunks: Open, clean SQLite index" "$o s" "rebuild $(metric "$f" $B rebuild-s) s" "" "<= 3 s" "$(verdict "$o" '<=' 3)"
	for q in video page; do
		p50=$(metric "$f" $B $q-p50-ms) p99=$(metric "$f" $B $q-p99-ms)
		row "  ListShards $q (10,000 / 1,000 chunks) p50, p99" "$p50 ms" "$p99 ms" "" "<= 50 ms" "$(verdict "$p99" '<=' 50)"
	done
	r=$(metric "$out/index-write.txt" BenchmarkProcessChunkIndex sqlite/memory)
	row "ProcessChunk 1 MiB: SQLite / memory index" "$(metric "$out/index-write.txt" BenchmarkProcessChunkIndex sqlite-MB/s) MB/s" \
		"$(metric "$out/index-write.txt" BenchmarkProcessChunkIndex memory-MB/s) MB/s" "$r" ">= 0.9" "$(verdict "$r" '>=' 0.9)"
fi
if want extra; then
	# Medians of the -count runs' MB/s (storage) and the ns/op pair (encode).
	med() { sort -g | awk '{a[NR] = $1} END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
	mbs() { awk -v b="$2" '$1 ~ ("^" b "-[0-9]+$") { for (i = 3; i <= NF; i++) if ($i == "MB/s") print $(i - 1) }' "$1" | med; }
	nsop() { awk -v b="$2" '$1 ~ ("^" b "-[0-9]+$") { for (i = 3; i <= NF; i++) if ($i == "ns/op") print $(i - 1) }' "$1" | med; }
	p=$(mbs "$out/storage.txt" BenchmarkCommit64MiB/Pending) w=$(mbs "$out/storage.txt" BenchmarkCommit64MiB/WriteFileSync)
	if [ -n "$p" ] && [ -n "$w" ]; then
		row "storage Commit 64 MiB (3 x 10 iters)" "$p MB/s" "WriteFile+fsync $w MB/s" \
			"$(awk -v a="$p" -v b="$w" 'BEGIN { printf "%.3f", a / b }')" "" ""
	else
		row "storage Commit 64 MiB" "failed" "" "" "" ""
	fi
	s=$(mbs "$out/encode.txt" BenchmarkSimulated64MiB)
	d=$(nsop "$out/encode.txt" BenchmarkFFmpegDirectVsEncoder/direct) e=$(nsop "$out/encode.txt" BenchmarkFFmpegDirectVsEncoder/encoder)
	if [ -n "$s" ] && [ -n "$d" ] && [ -n "$e" ]; then
		row "encode Simulated 64 MiB" "$s MB/s" "" "" "" ""
		row "encode FFmpeg Encoder/direct (ultrafast, 3x)" "$(awk -v e="$e" 'BEGIN { printf "%.3f s", e / 1e9 }')" \
			"$(awk -v d="$d" 'BEGIN { printf "direct %.3f s", d / 1e9 }')" \
			"$(awk -v a="$e" -v b="$d" 'BEGIN { printf "%.3f", a / b }')" "" ""
	else
		row "encode benchmarks" "failed" "" "" "" ""
	fi
fi
if want profile; then
	for path in Unary Stream; do
		v=$(awk '$1 ~ /^BenchmarkSimulated'"$path"'64MiB(-[0-9]+)?$/ { for (i = 3; i <= NF; i++) if ($i == "MB/s") print $(i - 1) }' "$out/profile-$path.txt")
		row "  $path alone, 30 iters (profiled)" "$v MB/s" "" "" "" ""
	done
fi
[ ${#failed[@]} -eq 0 ] || echo "FAILED (skipped above): ${failed[*]} -- see $out"
echo "(MB/s = 10^6 bytes/s; per-round figures are in the logs above and in $out)"
