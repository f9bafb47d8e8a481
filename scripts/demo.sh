#!/usr/bin/env bash
# The main job end to end on one machine: start two workers in ffmpeg mode
# on loopback with temporary stores, `master encode` a clip across them,
# print the summary and the verification, then stop the workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
make --no-print-directory build >/dev/null

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port, asked of the kernel.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((50100 + RANDOM % 800))
}

workers=()
for i in 1 2; do
  addr="127.0.0.1:$(free_port)"
  # The preset is the operator's: by default a worker refuses requests for
  # other codecs, presets or CRFs (ffmpeg.allow_overrides).
  VIDEOSHARD_FFMPEG_PRESET=veryfast \
    bin/worker --config configs/worker.yaml --listen "$addr" --storage-root "$work/store$i" 2>"$work/worker$i.log" &
  pids+=($!)
  workers+=("$addr")
done
for addr in "${workers[@]}"; do
  for _ in $(seq 100); do bin/master --worker "$addr" health >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "== two workers (ffmpeg, libx264 CRF 23, preset veryfast) on ${workers[*]}"

# A 12 s 720p source with audio, from ffmpeg's test sources, keyframes every 2 s.
src="$work/source.mp4"
ffmpeg -nostdin -hide_banner -v error -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=12" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=12" \
  -c:v libx264 -preset veryfast -crf 14 -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k -shortest "$src"
echo "== source: $(ffprobe -v error -show_entries stream=codec_name,width,height:format=duration,size -of compact=p=0 "$src" | tr '\n' ' ')"

out="$work/encoded.mkv"
echo "== master encode (2 s chunks) -> $out"
bin/master encode --workers "$(IFS=,; echo "${workers[*]}")" --output "$out" --segment-seconds 2 \
  --state-dir "$work/state" "$src"

echo "== the chunk map"
bin/master status --state-dir "$work/state" --video-id source.mp4
echo "== ffprobe of the output"
ffprobe -v error -count_packets -show_entries stream=codec_type,codec_name,nb_read_packets:format=format_name,duration \
  -of compact=p=0 "$out"
