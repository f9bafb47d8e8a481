#!/usr/bin/env bash
# make-testdata.sh regenerates the small sample clips in testdata/ from
# ffmpeg's built-in lavfi sources, so no third-party media is committed.
#
# Usage: scripts/make-testdata.sh [outdir]   (default: testdata/ beside this script)
#
# The flags aim at reproducible bytes for a given ffmpeg build: bitexact
# muxing and coding, no metadata, one encoder thread. A different ffmpeg or
# codec library version may still produce different (equally valid) bytes;
# the tests only rely on codecs, sizes, frame rates and frame counts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-"$here/../testdata"}
mkdir -p "$out"

ff=(ffmpeg -nostdin -hide_banner -loglevel error -y)
exact=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -threads 1)

# h264 + aac, 640x360, 30 fps, 4 s (120 frames), a keyframe every second.
"${ff[@]}" \
	-f lavfi -i "testsrc2=size=640x360:rate=30:duration=4" \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=4" \
	-map 0:v -map 1:a \
	-c:v libx264 -preset veryfast -crf 38 -pix_fmt yuv420p -g 30 -keyint_min 30 -sc_threshold 0 \
	-c:a aac -b:a 32k -ac 1 \
	"${exact[@]}" -movflags +faststart \
	"$out/h264_aac_640x360_30fps_4s.mp4"

# h264 without audio, 320x240, 30000/1001 fps, 3 s (90 frames), matroska.
"${ff[@]}" \
	-f lavfi -i "testsrc2=size=320x240:rate=30000/1001" \
	-frames:v 90 \
	-c:v libx264 -preset veryfast -crf 36 -pix_fmt yuv420p -g 30 \
	"${exact[@]}" \
	"$out/h264_noaudio_320x240_30000-1001_3s.mkv"

# vp9 + opus, 320x240, 25 fps, 3 s (75 frames), webm.
"${ff[@]}" \
	-f lavfi -i "smptebars=size=320x240:rate=25:duration=3" \
	-f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=3" \
	-map 0:v -map 1:a \
	-c:v libvpx-vp9 -b:v 0 -crf 45 -deadline good -cpu-used 4 -row-mt 0 -g 25 \
	-c:a libopus -b:a 24k -ac 1 \
	"${exact[@]}" \
	"$out/vp9_opus_320x240_25fps_3s.webm"

# Not media at all: for undecodable-input tests.
cat >"$out/not_video.txt" <<'TXT'
This file is deliberately not a video.
The encoder tests feed it to ffmpeg and expect ErrInvalidInput,
with ffmpeg's own reason in the error message.
TXT

ls -l "$out"
