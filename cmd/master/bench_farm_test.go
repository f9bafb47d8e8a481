package main

// The benchmark behind the master's per-chunk figures: one master keeping
// a farm of simulated workers busy on a long, small source.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/e2etest"
)

// farmSource writes minutes of 320x180 24 fps H.264 (a keyframe every
// second, so every segment length here cuts on keyframes, and no
// B-frames) with AAC audio to path: ten minutes encoded once, then
// copied end to end (the concat demuxer), so a two-hour source costs
// seconds to make. The master only demuxes, cuts and decodes it.
func farmSource(b *testing.B, dir string, minutes int) string {
	b.Helper()
	base := filepath.Join(dir, "base.mp4")
	run := func(args ...string) {
		b.Helper()
		cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("make source: %v\n%s", err, out)
		}
	}
	run("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=600",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=600",
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
		"-g", "24", "-keyint_min", "24", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", base)
	list := filepath.Join(dir, "list.txt")
	var sb strings.Builder
	for range (minutes + 9) / 10 {
		fmt.Fprintf(&sb, "file '%s'\n", base)
	}
	if err := os.WriteFile(list, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(dir, "source.mp4")
	run("-f", "concat", "-safe", "0", "-i", list, "-t", strconv.Itoa(60*minutes), "-c", "copy", src)
	return src
}

// farmReadCPU is the CPU seconds and wall time of the master's one
// unavoidable pass over the source: its ground-truth decode (every
// picture decoded and hashed, as Probe does).
func farmReadCPU(b *testing.B, src string) (float64, time.Duration) {
	b.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-fflags", "+genpts", "-copyts",
		"-autorotate", "0", "-i", src, "-map", "0:0", "-fps_mode", "passthrough", "-enc_time_base", "-1",
		"-f", "framehash", "-hash", "murmur3", "-y", os.DevNull)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("read the source: %v\n%s", err, out)
	}
	return mbenchRusageCPU(cmd.ProcessState), time.Since(start)
}

// farmWorkers starts n simulated workers, each encoding one chunk at a
// time in delay.
func farmWorkers(b *testing.B, n int, delay time.Duration) ([]*e2etest.Worker, string) {
	b.Helper()
	yaml := fmt.Sprintf("encoder: simulated\nsimulated: {delay: %s}\nlimits: {max_concurrent_tasks: 1}\n", delay)
	var ws []*e2etest.Worker
	var addrs []string
	for range n {
		w := mbenchWorker(b, yaml)
		ws = append(ws, w)
		addrs = append(addrs, w.Addr)
	}
	return ws, strings.Join(addrs, ",")
}

// farmFirstStored is when the first chunk of videoID was stored on any of
// ws, less its encode time: when its encode began.
func farmFirstStored(b *testing.B, ws []*e2etest.Worker, videoID string) time.Time {
	b.Helper()
	var first time.Time
	for _, w := range ws {
		for _, s := range mbenchSpans(b, w.Logs.String(), videoID) {
			if first.IsZero() || s.start.Before(first) {
				first = s.start
			}
		}
	}
	return first
}

// farmBusy is the share of each worker's time, from the start of its first
// chunk of videoID to the end of its last, that it spent encoding; the
// lowest of ws.
func farmBusy(b *testing.B, ws []*e2etest.Worker, videoID string) float64 {
	b.Helper()
	lowest := 1.0
	for _, w := range ws {
		spans := mbenchSpans(b, w.Logs.String(), videoID)
		if len(spans) < 2 {
			continue
		}
		from, to := spans[0].start, spans[0].end
		for _, s := range spans {
			from, to = mbenchMinTime(from, s.start), mbenchMaxTime(to, s.end)
		}
		lowest = min(lowest, mbenchBusy(spans).Seconds()/to.Sub(from).Seconds())
	}
	return lowest
}

// BenchmarkMasterFarm runs `master encode --verify off` of a long 320x180
// source (VIDEOSHARD_BENCH_FARM_MINUTES, default 120: 597 MB-like, made
// once by copying ten minutes end to end) across
// VIDEOSHARD_BENCH_FARM_WORKERS simulated workers (default 16, one chunk
// at a time, 200 ms each), once per segment length in
// VIDEOSHARD_BENCH_FARM_SEGMENTS (default "16,4,1": 450, 1,800 and 7,200
// chunks of a two-hour source), and measures against the ideal (chunks ×
// 200 ms / workers) and the master's one unavoidable pass over the source
// (its ground-truth decode, run alone first): the makespan, makespan /
// (ideal + that pass) (the target <= 1.3), the master's CPU
// seconds (its ffmpeg and ffprobe runs included) in all and per chunk
// beyond that pass (<= 5 ms), the time from the start to the first chunk's
// encode (<= 5 s), and the lowest worker busy share between its first chunk
// and its last. With VIDEOSHARD_BENCH_FARM_RESUME=1 the middle segment
// length is also run killed (SIGKILL) once half its chunks are stored and
// then resumed: the resume's wall and CPU against the work that was left.
func BenchmarkMasterFarm(b *testing.B) {
	minutes := mbenchEnvInt(b, "VIDEOSHARD_BENCH_FARM_MINUTES", 120)
	nworkers := mbenchEnvInt(b, "VIDEOSHARD_BENCH_FARM_WORKERS", 16)
	segments := []string{"16", "4", "1"}
	if v := os.Getenv("VIDEOSHARD_BENCH_FARM_SEGMENTS"); v != "" {
		segments = strings.Split(v, ",")
	}
	const delay = 200 * time.Millisecond
	dir := b.TempDir()
	src := farmSource(b, dir, minutes)
	readCPU, readWall := farmReadCPU(b, src)
	b.Logf("source: %d min, %.0f MB; its ground-truth decode alone: %.1f s wall, %.1f CPU-s; %d workers x 1 slot, %s per chunk",
		minutes, mbenchSize(b, src)/1e6, readWall.Seconds(), readCPU, nworkers, delay)
	ws, workers := farmWorkers(b, nworkers, delay)

	for i := 0; i < b.N; i++ {
		for _, seg := range segments {
			id := fmt.Sprintf("farm-%s-%d", seg, i)
			state := filepath.Join(dir, "state-"+id)
			out := filepath.Join(dir, id+".mkv")
			r := mbenchMaster(b, "encode", "--workers", workers, "--segment-seconds", seg, "--verify", "off",
				"--video-id", id, "--state-dir", state, "--timeout", "0", "--output", out, src)
			chunks, _ := strconv.Atoi(strings.Fields(mbenchField(r.stdout, "chunks") + " 0")[0])
			ideal := time.Duration(chunks) * delay / time.Duration(nworkers)
			first := farmFirstStored(b, ws, id).Sub(r.start)
			perChunk := (r.cpu - readCPU) / float64(chunks)
			b.Logf("segment %s s: %d chunks: makespan %.1f s = %.2fx (ideal %.1f s + read %.1f s); master %.1f CPU-s, %.1f ms per chunk beyond the read; first chunk at %.1f s; lowest worker busy %.1f%%",
				seg, chunks, r.wall.Seconds(), r.wall.Seconds()/(ideal+readWall).Seconds(), ideal.Seconds(), readWall.Seconds(),
				r.cpu, 1000*perChunk, first.Seconds(), 100*farmBusy(b, ws, id))
			b.ReportMetric(r.wall.Seconds()/(ideal+readWall).Seconds(), "makespan/ideal+read_"+seg+"s")
			b.ReportMetric(1000*perChunk, "master-ms/chunk_"+seg+"s")
			b.ReportMetric(first.Seconds(), "first-chunk-s_"+seg+"s")
			os.Remove(out)
		}
		if os.Getenv("VIDEOSHARD_BENCH_FARM_RESUME") == "1" {
			farmResume(b, ws, workers, src, dir, segments[len(segments)/2], i)
		}
	}
}

// farmResume kills a job once half its chunks are stored and resumes it.
func farmResume(b *testing.B, ws []*e2etest.Worker, workers, src, dir, seg string, round int) {
	b.Helper()
	id := fmt.Sprintf("farm-resume-%s-%d", seg, round)
	state := filepath.Join(dir, "state-"+id)
	out := filepath.Join(dir, id+".mkv")
	args := []string{"encode", "--workers", workers, "--segment-seconds", seg, "--verify", "off",
		"--video-id", id, "--state-dir", state, "--timeout", "0", "--output", out, src}
	full := mbenchMaster(b, append(args[:len(args):len(args)], "--force")...) // how many chunks, and the whole job's cost
	chunks, _ := strconv.Atoi(strings.Fields(mbenchField(full.stdout, "chunks") + " 0")[0])
	os.RemoveAll(state)
	os.Remove(out)
	id2 := id + "-k"
	args[8], args[10] = id2, state+"-k"
	cmd := exec.Command(bins["master"], args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		stored := 0
		for _, w := range ws {
			stored += len(mbenchSpans(b, w.Logs.String(), id2))
		}
		if stored >= chunks/2 {
			break
		}
		select {
		case err := <-exited:
			b.Fatalf("the master to kill exited first (%v) with %d of %d chunks stored:\n%s", err, stored, chunks, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	before := 0
	for _, w := range ws {
		before += len(mbenchSpans(b, w.Logs.String(), id2))
	}
	r := mbenchMaster(b, args...)
	after := 0
	for _, w := range ws {
		after += len(mbenchSpans(b, w.Logs.String(), id2))
	}
	b.Logf("resume after kill -9 at %d of %d chunks stored: %d chunks encoded by the resume in %.1f s and %.1f CPU-s; the whole job: %.1f s and %.1f CPU-s",
		before, chunks, after-before, r.wall.Seconds(), r.cpu, full.wall.Seconds(), full.cpu)
	b.ReportMetric(r.wall.Seconds()/full.wall.Seconds(), "resume/whole-wall")
}

// BenchmarkMasterCPUShare runs `master encode` of a 3-minute 854x480 30 fps
// source (testsrc2, CRF 12, a keyframe every 2 s, AAC audio; under film
// grain noise with VIDEOSHARD_BENCH_SHARE_NOISE=1) across two local ffmpeg workers (libx264, preset veryfast,
// one chunk at a time each) with the master's defaults but --verify
// (VIDEOSHARD_BENCH_SHARE_VERIFY, default sample), and reports the
// master's CPU seconds (its ffmpeg and ffprobe runs included) against the
// workers' (theirs included) over the job (the target <= 0.05),
// and the lowest worker busy share between its first chunk and its last
// (>= 95%). VIDEOSHARD_BENCH_SHARE_SECONDS sets the source's length.
func BenchmarkMasterCPUShare(b *testing.B) {
	seconds := mbenchEnvInt(b, "VIDEOSHARD_BENCH_SHARE_SECONDS", 180)
	verify := os.Getenv("VIDEOSHARD_BENCH_SHARE_VERIFY")
	if verify == "" {
		verify = "sample"
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "source.mp4")
	d := strconv.Itoa(seconds)
	filter := "testsrc2=size=854x480:rate=30:duration=" + d
	if os.Getenv("VIDEOSHARD_BENCH_SHARE_NOISE") == "1" {
		filter += ",noise=alls=4:allf=t" // a grain mezzanine: its decode costs half a veryfast encode
	}
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", filter,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration="+d,
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p",
		"-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", src)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("make source: %v\n%s", err, out)
	}
	yaml := "encoder: ffmpeg\nffmpeg: {video_codec: libx264, crf: 23, preset: veryfast, audio_codec: copy, container: matroska, threads: 0}\nlimits: {max_concurrent_tasks: 1}\n"
	ws := []*e2etest.Worker{mbenchWorker(b, yaml), mbenchWorker(b, yaml)}
	workers := ws[0].Addr + "," + ws[1].Addr
	workersCPU := func() float64 { return mbenchCPU(ws[0].Cmd.Process.Pid) + mbenchCPU(ws[1].Cmd.Process.Pid) }
	var shares, busies []float64
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("share-%d", i)
		out := filepath.Join(dir, id+".mkv")
		cpu0 := workersCPU()
		r := mbenchMaster(b, "encode", "--workers", workers, "--verify", verify, "--video-id", id,
			"--state-dir", filepath.Join(dir, "state"), "--timeout", "0", "--output", out, src)
		wcpu := workersCPU() - cpu0
		busy := farmBusy(b, ws, id)
		shares, busies = append(shares, r.cpu/wcpu), append(busies, busy)
		b.Logf("round %d: %d s source, %s chunks: master %.1f CPU-s, workers %.1f CPU-s: %.3f; wall %.1f s; lowest worker busy %.1f%%; verification: %s",
			i, seconds, mbenchField(r.stdout, "chunks"), r.cpu, wcpu, r.cpu/wcpu, r.wall.Seconds(), 100*busy, mbenchField(r.stdout, "verification"))
		os.Remove(out)
	}
	b.ReportMetric(mbenchMedian(shares), "master/workers-cpu")
	b.ReportMetric(100*mbenchMedian(busies), "lowest-busy-%")
}
