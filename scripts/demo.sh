#!/usr/bin/env bash
# The main job end to end on one machine: start a worker in ffmpeg mode on
# loopback with a temporary store, send it a clip as a chunk, list, read the
# metadata, fetch the shard back and ffprobe it, then stop the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
make --no-print-directory build >/dev/null

work=$(mktemp -d)
worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill -TERM "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 50161)
addr="127.0.0.1:$port"
clip=testdata/h264_aac_640x360_30fps_4s.mp4

echo "== starting a worker (ffmpeg, libx264) on $addr, store $work/store"
VIDEOSHARD_FFMPEG_PRESET=veryfast bin/worker --config configs/worker.yaml --listen "$addr" \
  --storage-root "$work/store" 2>"$work/worker.log" &
worker_pid=$!
export VIDEOSHARD_MASTER_WORKER="$addr"
for _ in $(seq 100); do bin/master health >/dev/null 2>&1 && break; sleep 0.1; done

echo "== health";               bin/master health
echo "== process-chunk $clip";  bin/master process-chunk --video-id demo.mp4 --chunk-index 0 "$clip"
echo "== process-chunk (vp9 override, crf 40)"
bin/master process-chunk --video-id demo.mp4 --chunk-index 1 --codec libvpx-vp9 --crf 40 "$clip"
echo "== list";                 bin/master list
echo "== metadata";             bin/master metadata --video-id demo.mp4
echo "== get-shard chunk 0";    bin/master get-shard --video-id demo.mp4 --chunk-index 0 --output "$work/chunk0.mkv"
echo "== ffprobe of the fetched shard"
ffprobe -v error -show_entries stream=codec_type,codec_name,width,height:format=format_name,duration \
  -of compact=p=0 "$work/chunk0.mkv"
echo "== the store on disk"
(cd "$work/store" && find . -path ./.tmp -prune -o -type f -print | sort)
echo "== worker log"
cat "$work/worker.log"
