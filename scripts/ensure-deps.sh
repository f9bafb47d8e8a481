#!/usr/bin/env bash
# Installs what videoshard's build, tests and demo need and the machine lacks:
# ffmpeg/ffprobe, prometheus/promtool (the end-to-end test of deploy/ runs a
# real Prometheus), and protoc for `make lint` (Debian packages).
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ "${1:-}" = "--with-protoc" ]; then
  command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
fi
command -v make >/dev/null 2>&1 || need+=(make)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
