#!/usr/bin/env bash
# Generates the corpus of hard source shapes the master must encode
# frame-exact (see README "The master CLI", issue 7): the shapes real files
# have and our own clips do not. Small (320x240 or so, a few seconds each)
# so CI runs every one end to end. Usage: scripts/make-corpus.sh DIR
#
# Each file's name says its shape; corpus.txt lists them with the segment
# length a test should cut them with and the output to encode them into.
set -euo pipefail
dir=${1:?usage: make-corpus.sh DIR}
mkdir -p "$dir"
cd "$dir"
ff() { ffmpeg -nostdin -hide_banner -v error -y "$@"; }
src="testsrc2=s=320x240:r=25"
tone="sine=f=440:r=48000"

# Open GOP H.264 (broadcast, camera, Blu-ray encoders), B-pyramid.
ff -f lavfi -i "$src:d=6" -f lavfi -i "$tone:d=6" -c:v libx264 -preset veryfast \
  -x264-params open-gop=1:keyint=50:min-keyint=50:bframes=3:b-pyramid=normal:scenecut=0 \
  -c:a aac -shortest opengop_h264.mp4

# MPEG-4 Part 2 in AVI with B-frames (DivX/Xvid): packets without pts.
ff -f lavfi -i "$src:d=5" -f lavfi -i "$tone:d=5" -c:v mpeg4 -vtag XVID -bf 2 -g 25 -q:v 4 \
  -c:a libmp3lame -shortest xvid_bframes.avi

# H.264 with B-frames in AVI: no pts either, and no parser that orders
# the pictures, so +genpts guesses their times in file order.
ff -f lavfi -i "$src:d=5" -f lavfi -i "$tone:d=5" -c:v libx264 -preset veryfast -bf 3 -g 25 \
  -c:a libmp3lame -shortest h264_bframes.avi

# The same written to a pipe: no index, no duration in the header.
ff -f lavfi -i "$src:d=5" -c:v mpeg4 -vtag XVID -bf 2 -g 25 -q:v 4 -f avi pipe:1 >nodur_piped.avi

# Windows Media (WMV2, WMA2 in ASF): the WMA decoder's first sound comes two
# packets after its first packet's time; Matroska copies it, MP4 converts.
ff -f lavfi -i "$src:d=5" -f lavfi -i "$tone:d=5" -c:v wmv2 -b:v 1M -c:a wmav2 -shortest legacy_wmv.wmv

# MPEG-2 program stream (DVD .vob/.mpg), B-frames, MP2 audio.
ff -f lavfi -i "testsrc2=s=352x288:r=25:d=5" -f lavfi -i "$tone:d=5" -c:v mpeg2video -bf 2 -g 12 -b:v 2M \
  -c:a mp2 -f vob dvd_program.mpg

# One keyframe in 12 s (screen recordings, live captures): longer than any segment.
ff -f lavfi -i "$src:d=12" -c:v libx264 -preset veryfast -x264-params keyint=10000:min-keyint=10000:scenecut=0 \
  long_gop.mp4

# Variable frame rate with a 0.6 s gap.
ff -f lavfi -i "$src:d=5" -vf "select='not(between(t\,2\,2.6))'" -fps_mode vfr -c:v libx264 -preset veryfast \
  -g 25 vfr_gaps.mkv

# HEVC 10-bit, BT.2020 PQ with mastering-display and content-light metadata.
ff -f lavfi -i "$src:d=4" -pix_fmt yuv420p10le -c:v libx265 -preset ultrafast \
  -x265-params "log-level=error:keyint=25:min-keyint=25:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc" \
  -color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc hevc_10bit_hdr.mkv

# Interlaced H.264 (top field first) in MPEG-TS.
ff -f lavfi -i "testsrc2=s=320x240:r=25:d=4" -c:v libx264 -preset veryfast -flags +ildct+ilme \
  -x264-params tff=1:keyint=25 -field_order tt -f mpegts interlaced_tff.ts

# Odd frame size, 4:4:4, non-square pixels (SAR 4:3), limited-range BT.709 tags.
ff -f lavfi -i "testsrc2=s=321x241:r=25:d=4" -vf setsar=4/3 -pix_fmt yuv444p -c:v libx264 -preset veryfast -g 25 \
  -color_primaries bt709 -color_trc bt709 -colorspace bt709 -color_range tv odd_size_444.mp4

# Phone recording: 90 degree display matrix, AAC audio.
# (ffmpeg 5.1 writes the matrix from the rotate tag on a stream copy only.)
ff -f lavfi -i "testsrc2=s=320x240:r=30:d=4" -f lavfi -i "$tone:d=4" -c:v libx264 -preset veryfast -g 30 \
  -c:a aac -shortest upright.mp4
ff -i upright.mp4 -c copy -metadata:s:v:0 rotate=90 rotated_90.mp4
rm -f upright.mp4

# Two audio and two subtitle tracks with languages, titles, dispositions;
# the audio starts 0.5 s before the video; chapters and container tags.
cat >tracks.srt <<'SRT'
1
00:00:00,500 --> 00:00:02,000
first line

2
00:00:02,500 --> 00:00:03,500
second line
SRT
cat >chapters.txt <<'META'
;FFMETADATA1
title=Corpus tracks
artist=videoshard
[CHAPTER]
TIMEBASE=1/1000
START=0
END=2000
title=Opening
[CHAPTER]
TIMEBASE=1/1000
START=2000
END=4000
title=Ending
META
ff -itsoffset 0.5 -f lavfi -i "$src:d=4" -f lavfi -i "$tone:d=4.5" -f lavfi -i "sine=f=660:r=44100:d=4.5" \
  -i tracks.srt -i tracks.srt -i chapters.txt \
  -map 0:v -map 1:a -map 2:a -map 3:s -map 4:s -map_metadata 5 -map_chapters 5 \
  -c:v libx264 -preset veryfast -g 25 -c:a:0 aac -c:a:1 libopus -c:s srt \
  -metadata:s:a:0 language=eng -metadata:s:a:0 title=Main -metadata:s:a:1 language=fra -metadata:s:a:1 title=Commentary \
  -metadata:s:s:0 language=eng -metadata:s:s:1 language=deu -metadata:s:s:1 title=Forced \
  -disposition:a:0 default -disposition:a:1 0 -disposition:s:0 0 -disposition:s:1 forced \
  multi_tracks.mkv
rm -f tracks.srt chapters.txt

# In-band parameter sets the decoder follows rather than the container's:
# a 4:2:0 stream's headers first, then a 4:4:4 stream whose own headers
# (same ids) come only once, in band; later keyframes carry none.
ff -f lavfi -i "$src:d=1" -c:v libx264 -preset veryfast -g 25 -bf 0 -f h264 part_a.h264
ff -f lavfi -i "$src:d=4" -pix_fmt yuv444p -c:v libx264 -preset veryfast -bf 0 \
  -x264-params keyint=25:min-keyint=25:scenecut=0 -f h264 part_b.h264
ff -i part_b.h264 -c copy -bsf:v 'noise=drop=gte(n\,25)' -f h264 part_b1.h264
ff -i part_b.h264 -c copy -bsf:v 'noise=drop=lt(n\,25),filter_units=remove_types=7|8' -f h264 part_b2.h264
cat part_a.h264 part_b1.h264 part_b2.h264 >inband.h264
ff -r 25 -i inband.h264 -c copy inband_sps_444.mp4
rm -f part_a.h264 part_b.h264 part_b1.h264 part_b2.h264 inband.h264

# A transport stream captured mid-GOP: it starts with packets nothing can
# decode, and the audio starts before the first picture.
ff -f lavfi -i "$src:d=8" -f lavfi -i "$tone:d=8" -c:v libx264 -preset veryfast -g 50 -bf 2 -c:a aac -f mpegts full.ts
size=$(stat -c%s full.ts)
dd if=full.ts of=midgop_capture.ts bs=188 skip=$((size / 188 / 3 + 7)) status=none
rm -f full.ts

# Video starting 6 s after the audio, with B-frames (past what ffprobe reads
# to guess the first timestamps).
ff -f lavfi -i "$tone:d=10" -itsoffset 6 -f lavfi -i "$src:d=4" -map 1:v -map 0:a -c:v libx264 -preset veryfast \
  -c:a aac -t 10 late_video.mkv

# A slideshow: one picture a second, chunks of one or two pictures.
ff -f lavfi -i "testsrc2=s=320x240:r=1:d=12" -c:v libx264 -preset veryfast -g 5 slideshow_1fps.mp4

# 30 fps with chunks of 10 s: more than x264's 250-picture GOP in a shard.
ff -f lavfi -i "testsrc2=s=160x120:r=30:d=21" -c:v libx264 -preset veryfast -g 60 fps30_long_chunks.mp4

# A phone-like variable frame rate: 30, then 15, then 30 fps, timestamps on
# a 1/90000 grid (an encoder's default time base, 1/average rate, would
# round the 30 fps stretches onto the average's grid).
ff -f lavfi -i "testsrc2=s=320x240:r=30:d=1.5" -f lavfi -i "testsrc2=s=320x240:r=15:d=1.5" \
	-f lavfi -i "testsrc2=s=320x240:r=30:d=1.5" -f lavfi -i "$tone:d=4.5" \
	-lavfi "[0:v]settb=1/90000[a];[1:v]settb=1/90000[b];[2:v]settb=1/90000[c];[a][b][c]concat=n=3:v=1,settb=1/90000[v]" \
	-map "[v]" -map 3:a -fps_mode passthrough -enc_time_base 1/90000 -c:v libx264 -preset veryfast -bf 0 -g 30 \
	-video_track_timescale 90000 -c:a aac vfr_phone.mp4

# An MP4 cut by stream copy (ffmpeg -ss): an edit list hides the half
# second of pre-roll from the keyframe before the cut, audio and video.
ff -f lavfi -i "$src:d=6" -f lavfi -i "$tone:d=6" -c:v libx264 -preset veryfast -bf 3 -g 50 -keyint_min 50 \
	-sc_threshold 0 -c:a aac uncut.mp4
ff -ss 0.5 -i uncut.mp4 -c copy -t 4 editlist_cut.mp4
rm uncut.mp4

# A capture that lost packets mid-GOP (a weak signal): ffmpeg conceals
# the damage, and so must every cut of it, the same way.
ff -f lavfi -i "$src:d=6" -f lavfi -i "$tone:d=6" -c:v libx264 -preset veryfast -g 50 -c:a aac -f mpegts full.ts
packets=$(($(stat -c%s full.ts) / 188))
{ head -c $((packets / 2 * 188)) full.ts; tail -c +$(((packets / 2 + 40) * 188 + 1)) full.ts; } >damaged_capture.ts
rm -f full.ts

# A capture garbled in five places (a bad signal over the air): the video
# conceals damage a frame-threaded decoder hides otherwise on each run, and
# the audio has packets flagged corrupt.
ff -f lavfi -i "$src:d=6" -f lavfi -i "$tone:d=6" -c:v libx264 -preset veryfast -g 25 -c:a aac -f mpegts garbled_capture.ts
size=$(stat -c%s garbled_capture.ts)
for k in 2 3 4 5 6; do
  head -c 2000 /dev/zero | tr '\0' '\132' | dd of=garbled_capture.ts bs=1 seek=$((size * k / 8)) conv=notrunc status=none
done

# Two captures of other picture sizes run together: refused (an encode
# holds one size; the later pictures would be scaled out of shape).
ff -f lavfi -i "testsrc2=s=320x240:r=25:d=2" -c:v libx264 -preset veryfast -g 25 -bf 0 -f h264 size_a.h264
ff -f lavfi -i "testsrc2=s=480x270:r=25:d=2" -c:v libx264 -preset veryfast -g 25 -bf 0 -f h264 size_b.h264
cat size_a.h264 size_b.h264 >size_ab.h264
ff -framerate 25 -f h264 -i size_ab.h264 -c copy size_change.mkv
rm -f size_a.h264 size_b.h264 size_ab.h264

# Captures run together whose pixel aspect, or colour description, changes
# midway (a broadcast switching from 4:3 to 16:9 material, an ad in another
# colour space): nothing but the pictures themselves says so.
ff -f lavfi -i "$src:d=2" -vf setsar=1 -c:v libx264 -preset veryfast -g 25 -bf 0 -f h264 sar_a.h264
ff -f lavfi -i "$src:d=2" -vf setsar=16/11 -c:v libx264 -preset veryfast -g 25 -bf 0 -f h264 sar_b.h264
cat sar_a.h264 sar_b.h264 >sar_ab.h264
ff -fflags +genpts -r 25 -i sar_ab.h264 -c copy -f mpegts sar_change.ts
ff -f lavfi -i "$src:d=2" -c:v libx264 -preset veryfast -g 25 -bf 0 \
  -color_primaries bt709 -color_trc bt709 -colorspace bt709 -f h264 colour_a.h264
ff -f lavfi -i "$src:d=2" -c:v libx264 -preset veryfast -g 25 -bf 0 \
  -color_primaries bt470bg -color_trc gamma28 -colorspace bt470bg -f h264 colour_b.h264
cat colour_a.h264 colour_b.h264 >colour_ab.h264
ff -fflags +genpts -r 25 -i colour_ab.h264 -c copy -f mpegts colour_change.ts
rm -f sar_a.h264 sar_b.h264 sar_ab.h264 colour_a.h264 colour_b.h264 colour_ab.h264

# Transport streams run together (cat a.ts b.ts, as captures and HLS
# segments are): the timestamps restart midway. In the second, the later
# capture's pictures are 4:4:4, so ffmpeg rebuilds its filters midway.
ff -f lavfi -i "$src:d=2" -f lavfi -i "$tone:d=2" -c:v libx264 -preset veryfast -g 25 -c:a mp2 -f mpegts part_a.ts
ff -f lavfi -i "testsrc=s=320x240:r=25:d=2" -f lavfi -i "sine=f=880:r=48000:d=2" -pix_fmt yuv420p -c:v libx264 \
  -preset veryfast -g 25 -c:a mp2 -f mpegts part_b.ts
ff -f lavfi -i "testsrc=s=320x240:r=25:d=2" -f lavfi -i "sine=f=880:r=48000:d=2" -pix_fmt yuv444p -c:v libx264 \
  -preset veryfast -g 25 -c:a mp2 -f mpegts part_c.ts
# The second capture at 50 fps (its own rate kept, not the first's), and
# one whose clock jumps 1000 s ahead (closed, as ffmpeg plays it).
ff -f lavfi -i "testsrc=s=320x240:r=50:d=2" -f lavfi -i "sine=f=880:r=48000:d=2" -pix_fmt yuv420p -c:v libx264 \
  -preset veryfast -g 50 -c:a mp2 -f mpegts part_d.ts
ff -f lavfi -i "testsrc=s=320x240:r=25:d=2" -f lavfi -i "sine=f=880:r=48000:d=2" -pix_fmt yuv420p -c:v libx264 \
  -preset veryfast -g 25 -c:a mp2 -output_ts_offset 1000 -f mpegts part_e.ts
cat part_a.ts part_b.ts >ts_restart.ts
cat part_a.ts part_c.ts >ts_restart_444.ts
cat part_a.ts part_d.ts >ts_restart_50fps.ts
cat part_a.ts part_e.ts >ts_jump_ahead.ts
rm -f part_a.ts part_b.ts part_c.ts part_d.ts part_e.ts

# Matroska written with negative timestamps, which ffmpeg 5.1 reads as
# none for the first second of pictures: the decoder numbers them from 0,
# and the file's own start at 0 again. They come before it, in sync with
# the audio (which starts at -1.021 s).
ff -f lavfi -i "$src:d=4" -f lavfi -i "$tone:d=4" -c:v libx264 -preset veryfast -g 25 -c:a aac \
  -output_ts_offset -1 -avoid_negative_ts disabled negative_start.mkv

# A recorder that opened an audio and a subtitle track and never wrote to
# them: MP4 leaves an empty track out, so the output is checked without.
printf '1\n00:00:00,500 --> 00:00:01,000\nx\n' >empty.srt
ff -f lavfi -i "$src:d=3" -f lavfi -i "$tone:d=3" -i empty.srt -map 0:v -map 1:a -map 2:s -c:v libx264 -preset veryfast \
  -g 25 -c:a libopus -bsf:a 'noise=drop=1' -bsf:s 'noise=drop=1' empty_tracks.mkv
rm -f empty.srt

# A broadcast multiplex of two programmes: the video's own sound is
# carried, not the other programme's.
ff -f lavfi -i "$src:d=4" -f lavfi -i "$tone:d=4" -f lavfi -i "smptebars=s=320x240:r=25:d=4" -f lavfi -i "sine=f=880:r=48000:d=4" \
  -map 0:v -map 1:a -map 2:v -map 3:a -c:v libx264 -preset veryfast -g 25 -c:a mp2 \
  -metadata:s:a:0 language=eng -metadata:s:a:1 language=spa \
  -program title=One:st=0:st=1 -program title=Two:st=2:st=3 -f mpegts two_programs.ts

# Full-range H.264 (phones, webcams, MJPEG-derived files) with one
# keyframe in 6 s: its chunks are made losslessly, in full range.
ff -f lavfi -i "$src:d=6" -vf format=yuvj420p -c:v libx264 -preset veryfast -g 150 fullrange_long_gop.mp4

# QuickTime Graphics (SMC): a palette of its own, one keyframe in 4 s.
ff -f lavfi -i "$src:d=4" -vf "split[a][b];[a]palettegen=max_colors=64[p];[b][p]paletteuse" \
  -c:v smc -g 100 palette_smc.mov

# A 60 fps phone video with 16 kHz AAC: the MP4 hides AAC's priming (64
# ms here) by its edit list; Matroska plays it and starts the video as
# much later, in sync, though the streams' start times move 4 frames.
ff -f lavfi -i "$src:d=4" -f lavfi -i "sine=f=440:r=16000:d=4" -vf fps=60 -c:v libx264 -preset veryfast -g 60 \
  -c:a aac -ac 1 phone_60fps_aac16k.mp4

# Progressive, then interlaced (top field first, field-coded), then
# progressive again, in one stream (broadcast switches): the split cuts
# where they switch, so every picture keeps its mode. With a run too short
# for chunks of its own (0.2 s), those pictures are coded as their
# neighbours, and named in a warning.
x264="-c:v libx264 -preset veryfast -g 25 -bf 2 -x264-params repeat-headers=1"
mixed() { # output, seconds of interlaced pictures
  ff -f lavfi -i "$src:d=2" $x264 mix_a.mkv
  ff -f lavfi -i "$src:d=$2,setfield=tff" -flags +ildct+ilme -top 1 $x264 mix_b.mkv
  ff -f lavfi -i "$src:d=2" $x264 mix_c.mkv
  printf "file mix_a.mkv\nfile mix_b.mkv\nfile mix_c.mkv\n" >mix.txt
  ff -f concat -i mix.txt -c copy "$1"
  rm mix_a.mkv mix_b.mkv mix_c.mkv mix.txt
}
mixed mixed_interlace.mkv 3
mixed short_interlace.mkv 0.2

# Interlaced MPEG-2 (bottom field first) in a program stream, one GOP for
# the whole: every chunk but the first a lossless intermediate, which must
# stay interlaced for its worker to code it so.
ff -f lavfi -i "$src:d=6,setfield=bff" -c:v mpeg2video -flags +ildct+ilme -top 0 -g 300 -b:v 2M -f vob interlaced_long_gop.vob

# Blu-ray PCM in M2TS: lossless audio that neither Matroska nor MOV has a
# tag for (ffmpeg refuses the one, writes the other unreadable); it stays
# lossless, as FLAC or ALAC.
ff -f lavfi -i "$src:d=4" -f lavfi -i "$tone:d=4" -c:v libx264 -preset veryfast -g 25 \
  -c:a pcm_bluray -ac 2 -f mpegts -mpegts_m2ts_mode 1 bluray_pcm.m2ts

# One picture shown over a song (a cover written as a video track, not an
# attached picture): a video of one frame, with its audio.
ff -f lavfi -i "$src" -frames:v 1 -c:v libx264 -preset veryfast -tune stillimage one_picture_v.mp4
ff -f lavfi -i "$tone:d=4" -c:a aac one_picture_a.m4a
ff -i one_picture_v.mp4 -i one_picture_a.m4a -map 0:v -map 1:a -c copy one_picture_song.mp4
rm one_picture_v.mp4 one_picture_a.m4a

# The sources refused before any encode, and what the refusal says.
cat >refused.txt <<'LIST'
size_change.mkv the video's picture size changes midway (320x240, then 480x270)
LIST

# name, segment seconds, output extension, the codec to ask for when the
# workers' default (libx264) cannot carry the source's presentation ("-"
# for the default), and the warnings the summary must give, if any, each
# one's start, separated by " | ". (The packet a capture run together
# starts with is flagged corrupt: its continuity counter jumps.)
cat >corpus.txt <<'LIST'
opengop_h264.mp4 1.5 mkv
xvid_bframes.avi 1.5 mkv
h264_bframes.avi 1.5 mkv
nodur_piped.avi 1.5 mkv
dvd_program.mpg 1.5 mkv
legacy_wmv.wmv 1.5 mkv
legacy_wmv.wmv 1.5 mp4
long_gop.mp4 2 mp4
vfr_gaps.mkv 1.5 mkv
hevc_10bit_hdr.mkv 1.5 mkv libx265
interlaced_tff.ts 1.5 mkv
odd_size_444.mp4 1.5 mp4
rotated_90.mp4 1.5 mp4
multi_tracks.mkv 1.5 mkv
inband_sps_444.mp4 1.5 mkv - video pixel format changes midway (yuv420p, then yuv444p)
midgop_capture.ts 1.5 mp4
late_video.mkv 1.5 mkv
slideshow_1fps.mp4 1.5 mkv
fps30_long_chunks.mp4 10 mp4
vfr_phone.mp4 1.5 mkv
vfr_phone.mp4 1.5 mp4
editlist_cut.mp4 1.5 mkv
editlist_cut.mp4 1.5 mp4
damaged_capture.ts 1.5 mkv - damaged source: 
garbled_capture.ts 2 mkv - damaged source: 
sar_change.ts 1.5 mkv - video pixel aspect changes midway (1:1, then 16:11)
colour_change.ts 1.5 mkv - video colour description changes midway
ts_restart.ts 1 mkv - damaged source: 1 of the video's packets | the video's timestamps go back, or jump ahead more than 10s, at 1 point (first at picture 50, 2.000s)
ts_restart_444.ts 1 mkv - video pixel format changes midway (yuv420p, then yuv444p) | damaged source: 1 of the video's packets | the video's timestamps go back, or jump ahead more than 10s, at 1 point
ts_restart_50fps.ts 1 mkv - damaged source: 1 of the video's packets | the video's timestamps go back, or jump ahead more than 10s, at 1 point (first at picture 50,
ts_jump_ahead.ts 1 mkv - damaged source: 1 of the video's packets | the video's timestamps go back, or jump ahead more than 10s, at 1 point (first at picture 50, 2.000s)
negative_start.mkv 1 mp4 - the video's first 25 pictures have no timestamps in the file
empty_tracks.mkv 1 mp4 - left out: stream 1 (audio opus): it has no packets | left out: stream 2 (subtitle ass): it has no packets
empty_tracks.mkv 1 mkv
phone_60fps_aac16k.mp4 1 mkv
fullrange_long_gop.mp4 1.5 mkv
palette_smc.mov 1 mkv - video pixel format: source pal8, output yuv444p (RGB to YUV)
mixed_interlace.mkv 1.5 mkv
short_interlace.mkv 1.5 mkv - video field mode: 5 of the 105 pictures compared are coded otherwise than the source's (the first, picture 50, is interlaced (top field first) in the source, progressive in the output)
interlaced_long_gop.vob 1.5 mkv
bluray_pcm.m2ts 1.5 mkv
bluray_pcm.m2ts 1.5 mov
one_picture_song.mp4 1 mkv
two_programs.ts 1 mkv - left out: stream 3 (audio mp2): it belongs to programme 2, the video to programme 1 | left out: stream 2 (video h264): video streams are not carried
LIST
