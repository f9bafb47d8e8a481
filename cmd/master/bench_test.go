package main

// The benchmark behind the master's figures on one machine: `master encode`
// across two local ffmpeg workers against one ffmpeg run over the whole file
// with the same codec, CRF and preset. Run it through scripts/bench.sh
// (`scripts/bench.sh master`); `go test` without -bench never runs it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/master"
)

// The workers' and the reference's encoding: the worker's defaults, spelt
// out so a change of defaults cannot make the two sides differ.
const (
	mbenchCodec  = "libx264"
	mbenchCRF    = "23"
	mbenchPreset = "medium"
)

// mbenchEnvInt reads a positive integer from env, or returns def.
func mbenchEnvInt(b *testing.B, env string, def int) int {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", env, v)
	}
	return n
}

func mbenchMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// mbenchSource writes seconds of 1280x720 30 fps video to path: testsrc2
// (moving patterns, a counter, colour bars) under temporal film-grain-like
// noise, as a high-quality mezzanine (libx264 CRF 12, veryfast, closed GOPs
// of 2 s, no scene-cut keyframes, so chunks cut on a fixed grid) with a
// 48 kHz AAC sine tone. VIDEOSHARD_BENCH_MASTER_SOURCE_CRF sets another
// CRF: the master decodes the whole source once more than a whole-file
// ffmpeg does, and a mezzanine's decode costs a third of a medium encode.
func mbenchSource(b *testing.B, path string, seconds int) {
	b.Helper()
	mbenchSourceGOP(b, path, seconds, 60)
}

// mbenchSourceGOP is mbenchSource with a keyframe every gop frames (and
// only there).
func mbenchSourceGOP(b *testing.B, path string, seconds, gop int) {
	b.Helper()
	d := strconv.Itoa(seconds)
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration="+d+",noise=alls=4:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration="+d,
		"-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", mbenchSourceCRF(b), "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "128k",
		"-movflags", "+faststart", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("make source: %v\n%s", err, out)
	}
}

// mbenchSourceCRF is the sources' CRF: 12, or VIDEOSHARD_BENCH_MASTER_SOURCE_CRF.
func mbenchSourceCRF(b *testing.B) string {
	return strconv.Itoa(mbenchEnvInt(b, "VIDEOSHARD_BENCH_MASTER_SOURCE_CRF", 12))
}

// mbenchWorker starts a worker and waits until it reports healthy.
func mbenchWorker(b *testing.B, yaml string) *e2etest.Worker {
	b.Helper()
	w := e2etest.StartWorker(b, bins["worker"], "", "", yaml)
	w.WaitHealthy()
	return w
}

// mbenchCPU is a process's CPU seconds so far, its own and its waited-for
// children's (the worker's ffmpeg and ffprobe runs), from /proc/pid/stat.
func mbenchCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // f[0] is field 3 (state)
	var ticks float64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime: fields 14-17
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

// mbenchRusageCPU is an exited command's CPU seconds, its children's
// included (wait4 reports both).
func mbenchRusageCPU(ps *os.ProcessState) float64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// mbenchRun is one `master encode`.
type mbenchRun struct {
	start, end time.Time // process start and exit
	wall       time.Duration
	cpu        float64 // the master's CPU seconds, its ffmpeg/ffprobe runs included
	stdout     string
}

// mbenchMaster runs `master encode`.
func mbenchMaster(b *testing.B, args ...string) mbenchRun {
	b.Helper()
	cmd := exec.Command(bins["master"], args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := mbenchRun{start: time.Now()}
	err := cmd.Run()
	r.end = time.Now()
	r.wall = r.end.Sub(r.start)
	if err != nil {
		b.Fatalf("master %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	r.cpu = mbenchRusageCPU(cmd.ProcessState)
	r.stdout = stdout.String()
	return r
}

// mbenchField is the value of a "key: value" line of the master's summary.
func mbenchField(summary, key string) string {
	for line := range strings.SplitSeq(summary, "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// mbenchSpan is when a worker's ffmpeg ran for one chunk.
type mbenchSpan struct{ start, end time.Time }

// mbenchSpans reads, from a worker's log, when its ffmpeg ran for each chunk
// of videoID it stored: the "chunk stored" line's time (milliseconds) less
// its encode_time (ffmpeg alone). The end is late by the shard's ffprobe
// and commit, some tens of milliseconds.
func mbenchSpans(b *testing.B, logs, videoID string) []mbenchSpan {
	b.Helper()
	var spans []mbenchSpan
	for line := range strings.SplitSeq(logs, "\n") {
		if !strings.Contains(line, `msg="chunk stored"`) || !strings.Contains(line, " video_id="+videoID+" ") {
			continue
		}
		var at time.Time
		var d time.Duration
		var err1, err2 error = errors.New("no time"), errors.New("no encode_time")
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "time="); ok {
				at, err1 = time.Parse(time.RFC3339Nano, v)
			}
			if v, ok := strings.CutPrefix(f, "encode_time="); ok {
				d, err2 = time.ParseDuration(v)
			}
		}
		if err := errors.Join(err1, err2); err != nil {
			b.Fatalf("worker log line %q: %v", line, err)
		}
		spans = append(spans, mbenchSpan{at.Add(-d), at})
	}
	return spans
}

// mbenchBusy is how long at least one of spans ran (their union).
func mbenchBusy(spans []mbenchSpan) time.Duration {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b mbenchSpan) int { return a.start.Compare(b.start) })
	var busy time.Duration
	var end time.Time
	for _, x := range s {
		if x.start.After(end) {
			end = x.start
		}
		if x.end.After(end) {
			busy += x.end.Sub(end)
			end = x.end
		}
	}
	return busy
}

var mbenchPSNRAverage = regexp.MustCompile(`PSNR y:\S+ u:\S+ v:\S+ average:(\S+)`)

// mbenchPSNR is the average PSNR (dB, over Y, U and V, weighted as ffmpeg's
// psnr filter does) of the video of out against the video of src, frame n
// against frame n. Both are renumbered (time base 1/30, PTS = frame number)
// because the filter pairs frames by timestamp, and Matroska's millisecond
// timestamps (33, 67, 100 ms) against the MP4 source's exact ones would pair
// every third frame with its predecessor and report some 28 dB instead of
// 41. The master's verification has checked the frame counts are equal.
func mbenchPSNR(b *testing.B, out, src string) float64 {
	b.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-i", out, "-i", src,
		"-lavfi", "[0:v]settb=1/30,setpts=N[o];[1:v]settb=1/30,setpts=N[s];[o][s]psnr", "-an", "-f", "null", "-")
	res, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("psnr of %s: %v\n%s", out, err, res)
	}
	m := mbenchPSNRAverage.FindAllSubmatch(res, -1)
	if m == nil {
		b.Fatalf("psnr of %s: no PSNR line in ffmpeg's output:\n%s", out, res)
	}
	v, err := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	if err != nil {
		b.Fatalf("psnr of %s: %q: %v", out, m[len(m)-1][1], err)
	}
	return v
}

func mbenchMinTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func mbenchMaxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func mbenchSize(b *testing.B, path string) float64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return float64(fi.Size())
}

// BenchmarkMasterEncodeVsWholeFile encodes a 30 s 1280x720 30 fps source
// (testsrc2 under film-grain noise, a 50 Mb/s H.264 mezzanine with a keyframe
// every 2 s, and AAC audio; made once, in the temporary directory) with
// `master encode` across two local workers in ffmpeg mode (libx264, CRF 23,
// preset medium, Matroska, ffmpeg's own thread count), and, as the
// reference, with one ffmpeg over the whole file with the same codec, CRF,
// preset, threads and container, copying the audio as the workers do. Each
// round runs both, the master first in even rounds and the reference first
// in odd ones; then, untimed, the PSNR of each output against the source
// (ffmpeg's psnr filter, average over Y, U and V). The figures (the issue's
// targets): median wall-time ratio master/reference (<= 1.15), output size
// ratio (<= 1.05), and PSNR master - reference (>= -0.2 dB); also the
// medians of each side, the share of rounds the master's own verification
// said OK (its summary's "verification: OK"), and where the master's wall
// time went: head (start to the first ffmpeg on a worker: probe, split,
// checksums, first upload), encode phase (to the last chunk stored), tail
// (fetch, join, verify), worker idle inside the encode phase, and CPU
// seconds of master + workers (their ffmpeg runs included) against the
// reference's. One log line per round, master/reference in each pair (a
// benchmark's log keeps 10 lines: up to 8 rounds show).
//
// Environment: VIDEOSHARD_BENCH_MASTER_ROUNDS (default 3),
// VIDEOSHARD_BENCH_MASTER_SEGMENT (the master's --segment-seconds, default
// 5: chunks cut at the first keyframe from each 5 s, so six chunks of 6 and
// 4 s, three per worker), VIDEOSHARD_BENCH_MASTER_VERIFY (the master's
// --verify, default sample), VIDEOSHARD_BENCH_MASTER_SLOTS
// (each worker's limits.max_concurrent_tasks, default 1: two encodes at once
// on the machine, each with ffmpeg's default threads).
func BenchmarkMasterEncodeVsWholeFile(b *testing.B) {
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Fatalf("this benchmark needs %s: %v", bin, err)
		}
	}
	rounds := mbenchEnvInt(b, "VIDEOSHARD_BENCH_MASTER_ROUNDS", 3)
	slots := mbenchEnvInt(b, "VIDEOSHARD_BENCH_MASTER_SLOTS", 1)
	segment := "5"
	if v := os.Getenv("VIDEOSHARD_BENCH_MASTER_SEGMENT"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err != nil || !(f > 0) {
			b.Fatalf("VIDEOSHARD_BENCH_MASTER_SEGMENT=%q: want a positive number of seconds", v)
		}
		segment = v
	}

	verify := os.Getenv("VIDEOSHARD_BENCH_MASTER_VERIFY")
	if verify == "" {
		verify = "sample"
	}

	dir := b.TempDir()
	src := filepath.Join(dir, "source.mp4")
	genStart := time.Now()
	mbenchSource(b, src, 30)
	genTime := time.Since(genStart)

	yaml := fmt.Sprintf("encoder: ffmpeg\nffmpeg: {video_codec: %s, crf: %s, preset: %s, audio_codec: copy, container: matroska, threads: 0}\nlimits: {max_concurrent_tasks: %d}\n",
		mbenchCodec, mbenchCRF, mbenchPreset, slots)
	w1, w2 := mbenchWorker(b, yaml), mbenchWorker(b, yaml)
	workers := w1.Addr + "," + w2.Addr
	b.Logf("source %.1f MB (made in %.0f s); segment %s s; 2 workers x %d slot(s), %s crf %s preset %s; --verify %s; %d rounds",
		mbenchSize(b, src)/1e6, genTime.Seconds(), segment, slots, mbenchCodec, mbenchCRF, mbenchPreset, verify, rounds)

	ref := func(out string) (time.Duration, float64) {
		cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", src,
			"-map", "0:v:0", "-map", "0:a?", "-c:v", mbenchCodec, "-crf", mbenchCRF, "-preset", mbenchPreset,
			"-c:a", "copy", "-fps_mode", "passthrough", "-f", "matroska", out)
		start := time.Now()
		res, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("reference ffmpeg: %v\n%s", err, res)
		}
		return d, mbenchRusageCPU(cmd.ProcessState)
	}

	var (
		wallRatio, sizeRatio, psnrM, psnrR, psnrD  []float64
		masterS, refS, masterMB, refMB, masterCPU  []float64
		refCPU, headS, encS, tailS, busiest, idleS []float64
		cpuRatio                                   []float64
		verified, chunks                           float64
	)
	for b.Loop() {
		for r := range rounds {
			rd := filepath.Join(dir, fmt.Sprintf("round%d", r))
			if err := os.MkdirAll(rd, 0o755); err != nil {
				b.Fatal(err)
			}
			id := fmt.Sprintf("bench-master-%d-r%d", time.Now().UnixNano(), r)
			mOut, rOut := filepath.Join(rd, "master.mkv"), filepath.Join(rd, "ref.mkv")
			args := []string{"encode", "--workers", workers, "--output", mOut, "--segment-seconds", segment,
				"--state-dir", filepath.Join(rd, "state"), "--video-id", id, "--verify", verify, src}

			var m mbenchRun
			var rWall time.Duration
			var rCPU float64
			cpu0 := mbenchCPU(w1.Cmd.Process.Pid) + mbenchCPU(w2.Cmd.Process.Pid)
			var cpu1 float64
			if r%2 == 0 {
				m = mbenchMaster(b, args...)
				cpu1 = mbenchCPU(w1.Cmd.Process.Pid) + mbenchCPU(w2.Cmd.Process.Pid)
				rWall, rCPU = ref(rOut)
			} else {
				rWall, rCPU = ref(rOut)
				cpu0 = mbenchCPU(w1.Cmd.Process.Pid) + mbenchCPU(w2.Cmd.Process.Pid)
				m = mbenchMaster(b, args...)
				cpu1 = mbenchCPU(w1.Cmd.Process.Pid) + mbenchCPU(w2.Cmd.Process.Pid)
			}

			// Untimed: what the master said, what the workers did, quality.
			verdict := mbenchField(m.stdout, "verification")
			if verdict == "OK" {
				verified++
			}
			n, _ := strconv.Atoi(strings.Fields(mbenchField(m.stdout, "chunks") + " 0")[0])
			chunks = float64(n)
			// Phases, from the workers' logs: head, from the master's start
			// to the first ffmpeg on a worker (probe, split, checksums, the
			// first upload); the encode phase, to the last chunk stored;
			// tail, to the master's exit (fetch, join, verify). Idle: the
			// time in the encode phase a worker ran no ffmpeg (uploads,
			// spooling, gaps), summed over both workers.
			s1 := mbenchSpans(b, w1.Logs.String(), id)
			s2 := mbenchSpans(b, w2.Logs.String(), id)
			all := append(slices.Clone(s1), s2...)
			if len(all) == 0 {
				b.Fatalf("the workers logged no stored chunk of %s", id)
			}
			first, last := all[0].start, all[0].end
			var sum1, sum2 float64
			for _, x := range all {
				first, last = mbenchMinTime(first, x.start), mbenchMaxTime(last, x.end)
			}
			for _, x := range s1 {
				sum1 += x.end.Sub(x.start).Seconds()
			}
			for _, x := range s2 {
				sum2 += x.end.Sub(x.start).Seconds()
			}
			head := first.Sub(m.start).Seconds()
			enc := last.Sub(first).Seconds()
			tail := m.end.Sub(last).Seconds()
			idle := 2*enc - mbenchBusy(s1).Seconds() - mbenchBusy(s2).Seconds()

			mSize, rSize := mbenchSize(b, mOut), mbenchSize(b, rOut)
			pm, pr := mbenchPSNR(b, mOut, src), mbenchPSNR(b, rOut, src)
			os.RemoveAll(rd)

			order := "master first"
			if r%2 == 1 {
				order = "ref first"
			}
			b.Logf("round %d (%s): wall %.2f/%.2f s = %.3f; size %.2f/%.2f MB = %.3f; PSNR %.3f/%.3f dB (%+.3f); verification %s; chunks %s; phases head %.1f enc %.1f tail %.1f s, ffmpeg %.1f+%.1f s, idle %.1f s; CPU %.1f (master %.1f, workers %.1f)/%.1f s",
				r, order, m.wall.Seconds(), rWall.Seconds(), m.wall.Seconds()/rWall.Seconds(),
				mSize/1e6, rSize/1e6, mSize/rSize, pm, pr, pm-pr, verdict, mbenchField(m.stdout, "per worker"),
				head, enc, tail, sum1, sum2, idle, m.cpu+cpu1-cpu0, m.cpu, cpu1-cpu0, rCPU)

			wallRatio = append(wallRatio, m.wall.Seconds()/rWall.Seconds())
			sizeRatio = append(sizeRatio, mSize/rSize)
			psnrM, psnrR, psnrD = append(psnrM, pm), append(psnrR, pr), append(psnrD, pm-pr)
			masterS, refS = append(masterS, m.wall.Seconds()), append(refS, rWall.Seconds())
			masterMB, refMB = append(masterMB, mSize/1e6), append(refMB, rSize/1e6)
			masterCPU, refCPU = append(masterCPU, m.cpu+cpu1-cpu0), append(refCPU, rCPU)
			cpuRatio = append(cpuRatio, (m.cpu+cpu1-cpu0)/rCPU)
			headS, encS, tailS = append(headS, head), append(encS, enc), append(tailS, tail)
			busiest, idleS = append(busiest, max(sum1, sum2)), append(idleS, idle)
		}
	}
	b.Logf("medians: wall %.3f (<= 1.15), size %.3f (<= 1.05), PSNR delta %+.3f dB (>= -0.2); verified %d of %d rounds",
		mbenchMedian(wallRatio), mbenchMedian(sizeRatio), mbenchMedian(psnrD), int(verified), len(wallRatio))
	b.ReportMetric(float64(len(wallRatio)), "rounds")
	b.ReportMetric(chunks, "chunks")
	b.ReportMetric(mbenchMedian(wallRatio), "wall-ratio")
	b.ReportMetric(mbenchMedian(sizeRatio), "size-ratio")
	b.ReportMetric(mbenchMedian(psnrD), "psnr-delta-dB")
	b.ReportMetric(mbenchMedian(psnrM), "psnr-master-dB")
	b.ReportMetric(mbenchMedian(psnrR), "psnr-ref-dB")
	b.ReportMetric(mbenchMedian(masterS), "master-s")
	b.ReportMetric(mbenchMedian(refS), "ref-s")
	b.ReportMetric(mbenchMedian(masterMB), "master-MB")
	b.ReportMetric(mbenchMedian(refMB), "ref-MB")
	b.ReportMetric(mbenchMedian(masterCPU), "master-cpu-s")
	b.ReportMetric(mbenchMedian(refCPU), "ref-cpu-s")
	b.ReportMetric(mbenchMedian(cpuRatio), "cpu-ratio")
	b.ReportMetric(mbenchMedian(headS), "head-s")
	b.ReportMetric(mbenchMedian(encS), "encode-phase-s")
	b.ReportMetric(mbenchMedian(tailS), "tail-s")
	b.ReportMetric(mbenchMedian(busiest), "busiest-worker-ffmpeg-s")
	b.ReportMetric(mbenchMedian(idleS), "worker-idle-s")
	b.ReportMetric(verified/float64(len(wallRatio)), "verified-share")
}

// mbenchJSON runs `master encode --json` and returns its summary.
func mbenchJSON(b *testing.B, args ...string) (mbenchRun, master.Summary) {
	b.Helper()
	r := mbenchMaster(b, append(args, "--json")...)
	var s master.Summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		b.Fatalf("master --json: %v\n%s", err, r.stdout)
	}
	if s.Verification == nil || !s.Verification.OK {
		b.Fatalf("master did not verify its output:\n%s", r.stdout)
	}
	return r, s
}

// BenchmarkMasterLongGOP: the same 60 s 1280x720 source (mbenchSource)
// made twice, once with a single keyframe and once with a keyframe every
// 2 s, each encoded by `master encode` across two local workers (the
// master benchmark's encoding) with 4 s segments, in interleaved rounds.
// The figures: chunks of the single-keyframe source (>= 12), its output
// verified frame-exact, and the median wall-time ratio single/every-2-s
// (<= 1.25), with the split's time and how its chunks were sent.
//
// Environment: VIDEOSHARD_BENCH_LONGGOP_ROUNDS (default 3),
// VIDEOSHARD_BENCH_LONGGOP_SECONDS (default 60), VIDEOSHARD_BENCH_MASTER_VERIFY
// (default sample).
func BenchmarkMasterLongGOP(b *testing.B) {
	rounds := mbenchEnvInt(b, "VIDEOSHARD_BENCH_LONGGOP_ROUNDS", 3)
	seconds := mbenchEnvInt(b, "VIDEOSHARD_BENCH_LONGGOP_SECONDS", 60)
	verify := os.Getenv("VIDEOSHARD_BENCH_MASTER_VERIFY")
	if verify == "" {
		verify = "sample"
	}
	dir := b.TempDir()
	long, short := filepath.Join(dir, "long.mp4"), filepath.Join(dir, "short.mp4")
	mbenchSourceGOP(b, long, seconds, 30*seconds+1)
	mbenchSourceGOP(b, short, seconds, 60)
	yaml := fmt.Sprintf("encoder: ffmpeg\nffmpeg: {video_codec: %s, crf: %s, preset: %s, audio_codec: copy, container: matroska, threads: 0}\nlimits: {max_concurrent_tasks: 1}\n",
		mbenchCodec, mbenchCRF, mbenchPreset)
	w1, w2 := mbenchWorker(b, yaml), mbenchWorker(b, yaml)
	workers := w1.Addr + "," + w2.Addr
	var ratio, longS, shortS, splitLong, splitShort []float64
	var last master.Summary
	for b.Loop() {
		for r := range rounds {
			run := func(src, name string) (mbenchRun, master.Summary) {
				rd := filepath.Join(dir, fmt.Sprintf("%s%d", name, r))
				defer os.RemoveAll(rd)
				return mbenchJSON(b, "encode", "--workers", workers, "--output", filepath.Join(rd, "out.mkv"),
					"--segment-seconds", "4", "--state-dir", filepath.Join(rd, "state"), "--verify", verify,
					"--video-id", fmt.Sprintf("bench-%s-%d-%d", name, time.Now().UnixNano(), r), src)
			}
			var lr, sr mbenchRun
			var ls, ss master.Summary
			if r%2 == 0 {
				lr, ls = run(long, "long")
				sr, ss = run(short, "short")
			} else {
				sr, ss = run(short, "short")
				lr, ls = run(long, "long")
			}
			if ls.Chunks < 12 {
				b.Errorf("the single-keyframe source made %d chunks, want at least 12", ls.Chunks)
			}
			ratio = append(ratio, lr.wall.Seconds()/sr.wall.Seconds())
			longS, shortS = append(longS, lr.wall.Seconds()), append(shortS, sr.wall.Seconds())
			splitLong, splitShort = append(splitLong, ls.Split.Seconds), append(splitShort, ss.Split.Seconds)
			b.Logf("round %d: wall %.1f/%.1f s = %.3f; chunks %d/%d; split %.1f/%.1f s (single keyframe: %d copied, %d lossless; PSNR %.2f/%.2f dB)",
				r, lr.wall.Seconds(), sr.wall.Seconds(), ratio[len(ratio)-1], ls.Chunks, ss.Chunks,
				ls.Split.Seconds, ss.Split.Seconds, ls.Split.Copied, ls.Split.Lossless, ls.Quality.MeanPSNR, ss.Quality.MeanPSNR)
			last = ls
		}
	}
	b.Logf("medians: wall single-keyframe/every-2-s %.3f (<= 1.25); %d chunks", mbenchMedian(ratio), last.Chunks)
	b.ReportMetric(mbenchMedian(ratio), "wall-ratio")
	b.ReportMetric(mbenchMedian(longS), "single-key-s")
	b.ReportMetric(mbenchMedian(shortS), "every-2s-s")
	b.ReportMetric(mbenchMedian(splitLong), "split-single-key-s")
	b.ReportMetric(mbenchMedian(splitShort), "split-every-2s-s")
	b.ReportMetric(float64(last.Chunks), "chunks")
}

// BenchmarkMasterVerifyCost: the master benchmark's 30 s 720p job (5 s
// segments, two workers) with --verify off, sample and full, in rotating
// order each round. The figures: median wall time of sample/off (<= 1.03)
// and full/off (<= 1.15), and the split proof's share of the job's wall
// time (<= 10%): the time spent decoding chunks before dispatch, summed,
// over the wall. Since the split is cut live, most of that decoding runs
// while earlier chunks encode, so the share overstates what the proof
// adds to the wall.
//
// Environment: VIDEOSHARD_BENCH_VERIFY_ROUNDS (default 3).
func BenchmarkMasterVerifyCost(b *testing.B) {
	rounds := mbenchEnvInt(b, "VIDEOSHARD_BENCH_VERIFY_ROUNDS", 3)
	dir := b.TempDir()
	src := filepath.Join(dir, "source.mp4")
	mbenchSource(b, src, 30)
	yaml := fmt.Sprintf("encoder: ffmpeg\nffmpeg: {video_codec: %s, crf: %s, preset: %s, audio_codec: copy, container: matroska, threads: 0}\nlimits: {max_concurrent_tasks: 1}\n",
		mbenchCodec, mbenchCRF, mbenchPreset)
	w1, w2 := mbenchWorker(b, yaml), mbenchWorker(b, yaml)
	workers := w1.Addr + "," + w2.Addr
	modes := []string{"off", "sample", "full"}
	walls := map[string][]float64{}
	var sampleRatio, fullRatio, proofShare []float64
	for b.Loop() {
		for r := range rounds {
			got := map[string]float64{}
			for k := range modes {
				mode := modes[(k+r)%len(modes)]
				rd := filepath.Join(dir, fmt.Sprintf("%s%d", mode, r))
				run, sum := mbenchJSON(b, "encode", "--workers", workers, "--output", filepath.Join(rd, "out.mkv"),
					"--segment-seconds", "5", "--state-dir", filepath.Join(rd, "state"), "--verify", mode,
					"--video-id", fmt.Sprintf("bench-verify-%s-%d-%d", mode, time.Now().UnixNano(), r), src)
				os.RemoveAll(rd)
				got[mode] = run.wall.Seconds()
				walls[mode] = append(walls[mode], run.wall.Seconds())
				if mode == "off" {
					proofShare = append(proofShare, sum.Split.ProofSeconds/run.wall.Seconds())
				}
			}
			sampleRatio = append(sampleRatio, got["sample"]/got["off"])
			fullRatio = append(fullRatio, got["full"]/got["off"])
			b.Logf("round %d: wall off %.1f s, sample %.1f s (%.3f), full %.1f s (%.3f); split proof %.1f%% of the job",
				r, got["off"], got["sample"], sampleRatio[r], got["full"], fullRatio[r], 100*proofShare[r])
		}
	}
	b.Logf("medians: sample/off %.3f (<= 1.03), full/off %.3f (<= 1.15), split proof %.1f%% of the job (<= 10%%)",
		mbenchMedian(sampleRatio), mbenchMedian(fullRatio), 100*mbenchMedian(proofShare))
	b.ReportMetric(mbenchMedian(sampleRatio), "sample/off")
	b.ReportMetric(mbenchMedian(fullRatio), "full/off")
	b.ReportMetric(mbenchMedian(proofShare), "proof-share")
	for _, m := range modes {
		b.ReportMetric(mbenchMedian(walls[m]), m+"-s")
	}
}
