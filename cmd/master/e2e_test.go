package main

// End-to-end tests of `master encode`: the real master and worker binaries,
// real ffmpeg, workers on loopback ports.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/master"
	pb "github.com/videoshard/videoshard/proto"
)

var bins map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "videoshard-master-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err = e2etest.Build(dir, "github.com/videoshard/videoshard/cmd/worker", "github.com/videoshard/videoshard/cmd/master")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testdata(name string) string {
	p, _ := filepath.Abs(filepath.Join("..", "..", "testdata", name))
	return p
}

const fastFFmpeg = "encoder: ffmpeg\nffmpeg: {preset: ultrafast, allow_overrides: {video_codecs: [libvpx-vp9, libx265], presets: [medium], crf: 0-63}}\n" +
	"limits: {max_concurrent_tasks: 2}\n"

// runMaster runs the master binary and returns its exit status and output.
func runMaster(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bins["master"], args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

func addrs(ws ...*e2etest.Worker) string {
	var a []string
	for _, w := range ws {
		a = append(a, w.Addr)
	}
	return strings.Join(a, ",")
}

// probeFrames counts a file's video frames and audio streams with ffprobe.
func probeFrames(t *testing.T, path string) (frames int, audio int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries",
		"stream=codec_type,nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kind, n, _ := strings.Cut(line, ",")
		switch kind {
		case "video":
			frames, _ = strconv.Atoi(strings.TrimSpace(n))
		case "audio":
			audio++
		}
	}
	return frames, audio
}

func TestE2EEncodeFrameExact(t *testing.T) {
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	tests := []struct {
		clip, out string
		extra     []string
	}{
		{"h264_aac_640x360_30fps_4s.mp4", "out.mkv", nil},
		{"h264_aac_640x360_30fps_4s.mp4", "out.mp4", nil},
		{"h264_noaudio_320x240_30000-1001_3s.mkv", "out.mkv", nil},
		{"h264_noaudio_320x240_30000-1001_3s.mkv", "out.mp4", nil},
		{"vp9_opus_320x240_25fps_3s.webm", "out.mkv", nil},
		{"vp9_opus_320x240_25fps_3s.webm", "out.webm", []string{"--codec", "libvpx-vp9", "--crf", "45"}},
	}
	for _, tt := range tests {
		t.Run(tt.clip+"->"+tt.out, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, tt.out)
			args := append([]string{"encode", "--workers", addrs(w1, w2), "--output", out, "--segment-seconds", "1",
				"--state-dir", filepath.Join(dir, "state"), "--video-id", "v-" + strings.ReplaceAll(tt.clip+tt.out, "/", "_")}, tt.extra...)
			code, stdout, stderr := runMaster(t, append(args, testdata(tt.clip))...)
			if code != 0 {
				t.Fatalf("master encode exited %d\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "verification:   OK") {
				t.Fatalf("summary does not say the output verified:\n%s", stdout)
			}
			srcFrames, srcAudio := probeFrames(t, testdata(tt.clip))
			gotFrames, gotAudio := probeFrames(t, out)
			if gotFrames != srcFrames || gotAudio != srcAudio {
				t.Fatalf("output has %d frames and %d audio streams; source %d and %d", gotFrames, gotAudio, srcFrames, srcAudio)
			}
			if strings.Contains(stdout, "per worker:") && !strings.Contains(stdout, w1.Addr) && !strings.Contains(stdout, w2.Addr) {
				t.Errorf("summary names no worker:\n%s", stdout)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "state")); len(entries) != 2 {
				t.Errorf("state dir holds %v, want only the chunk map (its snapshot and journal)", entries)
			}
		})
	}
}

// A worker killed mid-job and a listed worker that never answers: the job
// completes on the rest.
func TestE2EWorkerFailures(t *testing.T) {
	dir := t.TempDir()
	hang := filepath.Join(dir, "ffmpeg")
	started := filepath.Join(dir, "started")
	// An ffmpeg that never finishes an encode, so the chunk is in flight
	// when its worker is killed.
	script := "#!/bin/sh\ncase \"$*\" in *file:*) ;; *) exec ffmpeg \"$@\";; esac\necho $$ > " + started + "\nexec sleep 600\n"
	if err := os.WriteFile(hang, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	good := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	doomed := e2etest.StartWorker(t, bins["worker"], "", "", "encoder: ffmpeg\nffmpeg: {binary: "+hang+"}\n")
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	out := filepath.Join(dir, "out.mkv")
	cmd := exec.Command(bins["master"], "encode", "--workers", addrs(good, doomed)+","+silent.Addr().String(),
		"--output", out, "--segment-seconds", "1", "--state-dir", filepath.Join(dir, "state"), "--per-worker-cap", "1",
		testdata("h264_noaudio_320x240_30000-1001_3s.mkv"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var encodePID int
	waitFor(t, 60*time.Second, func() bool {
		b, err := os.ReadFile(started)
		encodePID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && encodePID > 0
	})
	doomed.Kill()
	// The kernel kills the encode of a worker that died (PR_SET_PDEATHSIG).
	waitFor(t, 10*time.Second, func() bool { return syscall.Kill(encodePID, 0) != nil })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("master encode: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "verification:   OK") || !strings.Contains(stdout.String(), good.Addr+": 3") {
		t.Fatalf("want all 3 chunks on the surviving worker, verified:\n%s\n%s", stdout.String(), stderr.String())
	}
	if frames, _ := probeFrames(t, out); frames != 90 {
		t.Fatalf("output has %d frames, want 90", frames)
	}
}

// The master killed mid-job resumes: the second run encodes only what the
// first did not store, and no chunk is encoded twice.
func TestE2EResumeAfterMasterKilled(t *testing.T) {
	// Chunks slow enough that some are left when the split is done.
	sim := "encoder: simulated\nsimulated: {delay: 2s}\nlimits: {max_concurrent_tasks: 1}\n"
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", sim)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", sim)
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	args := []string{"encode", "--workers", addrs(w1, w2), "--output", filepath.Join(dir, "out.mkv"), "--segment-seconds", "0.5",
		"--state-dir", stateDir, "--video-id", "resume", testdata("h264_aac_640x360_30fps_4s.mp4")}

	first := exec.Command(bins["master"], args...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := func(s *master.JobState) int {
		n := 0
		for _, c := range s.Chunks {
			if c.Done {
				n++
			}
		}
		return n
	}
	// Killed once its split is kept for a resume (a live split keeps it
	// when the whole source is cut) and some chunks are done.
	split := filepath.Join(stateDir, "resume.work", "split.gob")
	waitFor(t, 60*time.Second, func() bool {
		s, err := master.LoadState(stateDir, "resume")
		_, kept := os.Stat(split)
		return err == nil && done(s) >= 2 && kept == nil
	})
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	if _, err := master.LoadState(stateDir, "resume"); err != nil {
		t.Fatal(err)
	}
	// The map may not list every chunk yet (a live split lists them as it
	// plans them): the output says whether the job ended.
	if _, err := os.Stat(filepath.Join(dir, "out.mkv")); err == nil {
		t.Fatal("the first run finished before it was killed; the test proves nothing")
	}
	// The job in flight stays pinned on its workers: the pin is the
	// workers' to keep, not the master process's.
	for _, w := range []*e2etest.Worker{w1, w2} {
		if _, err := os.Stat(filepath.Join(w.Root, ".pins", "resume")); err != nil {
			t.Errorf("worker %s: the killed job's video is not pinned: %v", w.Addr, err)
		}
	}

	// The resume costs the work left: the source is neither decoded nor
	// cut again (what the first run found is kept in its work directory).
	calls := filepath.Join(dir, "ffmpeg-calls")
	wrapper := filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\nexec ffmpeg \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMaster(t, append(args, "--ffmpeg", wrapper)...)
	if code != 0 {
		t.Fatalf("resumed run exited %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "those the interrupted run cut") {
		t.Errorf("the summary should say the resume used the first run's chunks:\n%s", stdout)
	}
	ran, _ := os.ReadFile(calls)
	if src := testdata("h264_aac_640x360_30fps_4s.mp4"); strings.Contains(string(ran), filepath.Base(src)) {
		t.Errorf("the resume read the source with ffmpeg again:\n%s", ran)
	}
	if !strings.Contains(stdout, "media checks skipped") {
		t.Errorf("simulated shards: the summary should say media checks were skipped:\n%s", stdout)
	}
	for _, w := range []*e2etest.Worker{w1, w2} {
		if _, err := os.Stat(filepath.Join(w.Root, ".pins", "resume")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("worker %s: the finished job's video is still pinned (%v)", w.Addr, err)
		}
	}
	// Every chunk was stored exactly once across both workers.
	stored := map[string]int{}
	for _, w := range []*e2etest.Worker{w1, w2} {
		for _, line := range strings.Split(w.Logs.String(), "\n") {
			if strings.Contains(line, `msg="chunk stored"`) && strings.Contains(line, "video_id=resume ") {
				f := strings.Fields(line[strings.Index(line, "chunk="):])
				stored[f[0]]++
			}
		}
	}
	final, err := master.LoadState(stateDir, "resume")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(final.Chunks) {
		t.Fatalf("%d chunks stored, the job has %d: %v", len(stored), len(final.Chunks), stored)
	}
	for chunk, n := range stored {
		if n != 1 {
			t.Errorf("%s encoded %d times", chunk, n)
		}
	}
}

func TestE2ENotVideo(t *testing.T) {
	w := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	dir := t.TempDir()
	code, stdout, stderr := runMaster(t, "encode", "--workers", w.Addr, "--output", filepath.Join(dir, "out.mkv"),
		"--state-dir", filepath.Join(dir, "state"), testdata("not_video.txt"))
	if code != 1 || !strings.Contains(stderr, "not a media file") {
		t.Fatalf("exit %d, want 1 with a clear reason\n%s\n%s", code, stdout, stderr)
	}
	assertStoresNothing(t, w)
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Fatalf("a state dir was made for an input that is not video: %v", err)
	}
}

// TestE2EOutputTheWorkersCannotFill: a WebM output from workers that
// encode H.264 by default is refused before any chunk is sent, naming the
// worker and the fix (--codec), not after every chunk was encoded.
func TestE2EOutputTheWorkersCannotFill(t *testing.T) {
	w := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	dir := t.TempDir()
	code, stdout, stderr := runMaster(t, "encode", "--workers", w.Addr, "--output", filepath.Join(dir, "out.webm"),
		"--state-dir", filepath.Join(dir, "state"), testdata("h264_aac_640x360_30fps_4s.mp4"))
	if code != 1 || !strings.Contains(stderr, "encodes libx264 by default") || !strings.Contains(stderr, "webm cannot carry") ||
		!strings.Contains(stderr, "--codec") {
		t.Fatalf("exit %d, want 1 naming the worker's codec and --codec\n%s\n%s", code, stdout, stderr)
	}
	assertStoresNothing(t, w)
}

// assertStoresNothing fails t if w stores any shard.
func assertStoresNothing(t *testing.T, w *e2etest.Worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{})
	if err != nil || len(list.GetVideos()) != 0 {
		t.Fatalf("the worker stores %v (%v), want nothing", list.GetVideos(), err)
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ctrl-C cancels the chunks in flight, keeps the chunk map and says how to
// resume.
func TestE2EInterrupt(t *testing.T) {
	w := e2etest.StartWorker(t, bins["worker"], "", "", "encoder: simulated\nsimulated: {delay: 700ms}\nlimits: {max_concurrent_tasks: 1}\n")
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	cmd := exec.Command(bins["master"], "encode", "--workers", w.Addr, "--output", filepath.Join(dir, "out.mkv"),
		"--segment-seconds", "1", "--state-dir", stateDir, "--video-id", "interrupted", testdata("h264_aac_640x360_30fps_4s.mp4"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool {
		s, err := master.LoadState(stateDir, "interrupted")
		return err == nil && len(s.Chunks) > 0 && len(s.Pending()) < len(s.Chunks)
	})
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("interrupted master: %v, want exit status 1\n%s", err, stderr.String())
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the master took %s to stop after Ctrl-C", time.Since(start))
	}
	if !strings.Contains(stderr.String(), "run the same command to resume") {
		t.Errorf("no resume hint:\n%s", stderr.String())
	}
	s, err := master.LoadState(stateDir, "interrupted")
	if err != nil || len(s.Pending()) == len(s.Chunks) {
		t.Fatalf("chunk map after Ctrl-C: %+v, %v", s, err)
	}
	// The worker stops encoding the cancelled chunk: nothing runs there.
	waitFor(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{})
		return err == nil && h.GetActiveTasks() == 0
	})
}

// A shard corrupted on its worker's disk after the job stored it: the
// worker refuses it with DataLoss when the master fetches it, and the
// master encodes that chunk again instead of failing.
func TestE2ECorruptShardIsEncodedAgain(t *testing.T) {
	w := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	dir := t.TempDir()
	args := []string{"encode", "--workers", w.Addr, "--output", filepath.Join(dir, "out.mkv"), "--segment-seconds", "1",
		"--state-dir", filepath.Join(dir, "state"), "--video-id", "rot", testdata("h264_noaudio_320x240_30000-1001_3s.mkv")}
	if code, stdout, stderr := runMaster(t, args...); code != 0 {
		t.Fatalf("first run exited %d\n%s\n%s", code, stdout, stderr)
	}
	shard := filepath.Join(w.Root, "rot", "chunk_1.shard")
	data, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff // bit rot: same size, other bytes
	if err := os.WriteFile(shard, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMaster(t, append(args, "--force")...) // the first run wrote the output
	if code != 0 || !strings.Contains(stdout, "1 encoded again") || !strings.Contains(stdout, "verification:   OK") {
		t.Fatalf("second run exited %d, want chunk 1 encoded again and the output verified\n%s\n%s", code, stdout, stderr)
	}
	if frames, _ := probeFrames(t, filepath.Join(dir, "out.mkv")); frames != 90 {
		t.Fatalf("output has %d frames, want 90", frames)
	}
}

// TestE2ECorpus encodes every hard shape of scripts/make-corpus.sh across
// two ffmpeg workers: each output must verify (pictures above the PSNR
// floor included), decode to as many pictures as the source, and carry
// the source's presentation: no warning but those corpus.txt names.
func TestE2ECorpus(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("bash", filepath.Join("..", "..", "scripts", "make-corpus.sh"), dir).CombinedOutput(); err != nil {
		t.Fatalf("make-corpus.sh: %v\n%s", err, out)
	}
	list, err := os.ReadFile(filepath.Join(dir, "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", fastFFmpeg)
	for line := range strings.Lines(string(list)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("corpus.txt: %q", line)
		}
		t.Run(f[0], func(t *testing.T) {
			src := filepath.Join(dir, f[0])
			out := filepath.Join(t.TempDir(), "out."+f[2])
			args := []string{"encode", "--workers", addrs(w1, w2), "--output", out,
				"--segment-seconds", f[1], "--state-dir", filepath.Join(t.TempDir(), "state")}
			if len(f) > 3 && f[3] != "-" {
				args = append(args, "--codec", f[3])
			}
			var warns []string // the warnings expected, if any
			if len(f) > 4 {
				warns = strings.Split(strings.Join(f[4:], " "), " | ")
			}
			code, stdout, stderr := runMaster(t, append(args, src)...)
			if code != 0 {
				t.Fatalf("master encode exited %d\n%s\n%s", code, stdout, stderr)
			}
			for _, want := range []string{"verification:   OK", "every chunk checked picture by picture", "pictures compared (full)"} {
				if !strings.Contains(stdout, want) {
					t.Fatalf("summary does not say %q:\n%s", want, stdout)
				}
			}
			if n := strings.Count(stdout, "warning:"); len(warns) == 0 && n > 0 {
				t.Errorf("the output does not carry all of the source's presentation:\n%s", stdout)
			} else if n != len(warns) {
				t.Errorf("want %d warnings, %q:\n%s", len(warns), warns, stdout)
			}
			for _, w := range warns {
				if !strings.Contains(stdout, "warning:        "+w) {
					t.Errorf("no warning %q:\n%s", w, stdout)
				}
			}
			if got, want := decodedPictures(t, out), decodedPictures(t, src); got != want {
				t.Errorf("the output decodes to %d pictures, the source %d", got, want)
			}
			// As ffmpeg itself shows them; where the master mends the
			// source's timestamps, it says so and shows them otherwise.
			if !strings.Contains(strings.Join(warns, " "), "timestamps") {
				if i, got, want := firstMisplaced(pictureTimes(t, out), pictureTimes(t, src)); i >= 0 {
					t.Errorf("the output's picture %d is shown %.4fs after its first, the source's %.4fs", i, got, want)
				}
			}
			// Every picture coded as the source's is: progressive or
			// interlaced, and which field first.
			if !strings.Contains(strings.Join(warns, " "), "field mode") {
				if got, want := fieldModes(t, out), fieldModes(t, src); got != want {
					t.Errorf("the output's pictures are coded %s, the source's %s", got, want)
				}
			}
			// Lossless audio stays lossless, sample for sample.
			if codec, got := audioSamples(t, out); codec == "flac" || codec == "alac" || strings.HasPrefix(codec, "pcm_") {
				if _, want := audioSamples(t, src); got != want {
					t.Errorf("the output's first audio stream (%s) does not decode to the source's samples", codec)
				}
			}
			t.Log(strings.TrimSpace(grepLine(stdout, "split:")))
			t.Log(strings.TrimSpace(grepLine(stdout, "pictures:")))
		})
	}
	refused, err := os.ReadFile(filepath.Join(dir, "refused.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(refused)) {
		name, reason, _ := strings.Cut(strings.TrimSpace(line), " ")
		t.Run(name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			code, stdout, stderr := runMaster(t, "encode", "--workers", addrs(w1, w2), "--output", filepath.Join(t.TempDir(), "out.mkv"),
				"--segment-seconds", "1.5", "--state-dir", state, filepath.Join(dir, name))
			if code != 1 || !strings.Contains(stderr, reason) || strings.Contains(stderr, "resume") {
				t.Fatalf("exit %d, want 1 saying %q and not to resume\n%s\n%s", code, reason, stdout, stderr)
			}
			// Nothing of a job that can never finish is kept.
			if _, err := os.Stat(state); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the state directory is left: %v", err)
			}
		})
	}
}

// audioSamples is the codec of path's first audio stream and the MD5 of
// the samples it decodes to, as 32-bit PCM; "" and "" for no audio.
func audioSamples(t *testing.T, path string) (codec, sum string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	if codec = strings.TrimSpace(string(out)); codec == "" {
		return "", ""
	}
	out, err = exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0",
		"-c:a", "pcm_s32le", "-f", "md5", "-").Output()
	if err != nil {
		t.Fatalf("decode the audio of %s: %v", path, err)
	}
	return codec, strings.TrimSpace(string(out))
}

// fieldModes says how ffmpeg decodes the pictures of path's first video
// stream, in runs of showinfo's "i:": "P×50 T×75 P×50".
func fieldModes(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", path, "-map", "0:v:0",
		"-vf", "showinfo=checksum=0", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var runs []string
	last, n := "", 0
	for line := range strings.Lines(string(out)) {
		_, after, ok := strings.Cut(line, " i:")
		if !ok || !strings.Contains(line, "Parsed_showinfo_") {
			continue
		}
		mode, _, _ := strings.Cut(after, " ")
		if mode != last && n > 0 {
			runs = append(runs, fmt.Sprintf("%s×%d", last, n))
			n = 0
		}
		last = mode
		n++
	}
	return strings.Join(append(runs, fmt.Sprintf("%s×%d", last, n)), " ")
}

// decodedPictures counts the pictures ffmpeg decodes from path's first
// video stream.
func decodedPictures(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-fflags", "+genpts", "-i", path,
		"-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framecrc", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	n := 0
	for line := range strings.Lines(string(out)) {
		if !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// pictureTimes is when ffmpeg shows each picture of path's first video
// stream, in seconds from the first, in the order it decodes them.
func pictureTimes(t *testing.T, path string) []float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-copyts", "-i", path,
		"-map", "0:v:0", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "framecrc", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var num, den float64
	var times []float64
	for line := range strings.Lines(string(out)) {
		if tb, ok := strings.CutPrefix(line, "#tb 0: "); ok {
			if _, err := fmt.Sscanf(tb, "%g/%g", &num, &den); err != nil {
				t.Fatalf("%s: time base %q", path, tb)
			}
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 3 || den == 0 {
			t.Fatalf("%s: framecrc line %q", path, line)
		}
		pts, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		if err != nil {
			t.Fatalf("%s: framecrc line %q", path, line)
		}
		times = append(times, float64(pts)*num/den)
	}
	for i := len(times) - 1; i >= 0; i-- {
		times[i] -= times[0]
	}
	return times
}

// firstMisplaced is the first picture of got shown more than half the
// source's shortest frame away from its time in want, from their first
// pictures (-1 when none is; got and want as pictureTimes gives them).
func firstMisplaced(got, want []float64) (i int, g, w float64) {
	half := math.Inf(1)
	for i := 1; i < len(want); i++ {
		half = min(half, (want[i]-want[i-1])/2)
	}
	for i := range min(len(got), len(want)) {
		if math.Abs(got[i]-want[i]) > half {
			return i, got[i], want[i]
		}
	}
	return -1, 0, 0
}

func grepLine(s, prefix string) string {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// liarWorker starts a worker whose ffmpeg re-encodes every shard it writes
// through filter (keeping the file, as the worker checks its temporary
// shard was not replaced): a worker that returns valid shards of the
// wrong pictures or times.
func liarWorker(t *testing.T, filter string) *e2etest.Worker {
	t.Helper()
	liar := filepath.Join(t.TempDir(), "ffmpeg")
	script := `#!/bin/sh
ffmpeg "$@" || exit $?
out=
for a in "$@"; do case "$a" in file:*) out=${a#file:};; esac; done
[ -n "$out" ] || exit 0
liar=$(mktemp) || exit 1
ffmpeg -nostdin -v error -y -i "$out" -vf '` + filter + `' -c:v libx264 -preset ultrafast -fps_mode passthrough -f matroska "$liar" && cat "$liar" >"$out"
rc=$?
rm -f "$liar"
exit $rc
`
	if err := os.WriteFile(liar, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return e2etest.StartWorker(t, bins["worker"], "", "",
		fmt.Sprintf("encoder: ffmpeg\nffmpeg: {preset: ultrafast, binary: %s}\nlimits: {max_concurrent_tasks: 2}\n", liar))
}

// TestE2ELyingWorker: a worker whose shards are valid encodes of other
// pictures (negated; frame counts, timestamps and checksums all agree) is
// caught by the picture check: the chunk is encoded again once, measures
// below the floor again, and the job fails naming it and its measure.
func TestE2ELyingWorker(t *testing.T) {
	dir := t.TempDir()
	w := liarWorker(t, "negate")
	code, stdout, stderr := runMaster(t, "encode", "--workers", w.Addr, "--output", filepath.Join(dir, "out.mkv"),
		"--segment-seconds", "2", "--state-dir", filepath.Join(dir, "state"), testdata("h264_aac_640x360_30fps_4s.mp4"))
	if code == 0 {
		t.Fatalf("master encode succeeded on negated pictures:\n%s", stdout)
	}
	for _, want := range []string{"chunk fails picture verification after it was encoded again", "chunk 0 (pictures 0 to 59)", "below the floor of 20.00 dB"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.mkv")); err == nil {
		t.Error("an output was written")
	}
}

// TestE2EFailedVerificationKeepsOutputAside: shards whose pictures are
// right but whose times jump by 20 ms after their tenth picture make the
// joined output drift from the source; the verification fails, the output path is left as it was
// (here: an older file, untouched although --force allowed replacing it),
// and the unverified output is kept beside it for a look.
func TestE2EFailedVerificationKeepsOutputAside(t *testing.T) {
	dir := t.TempDir()
	w := liarWorker(t, "setpts=PTS+if(gt(N\\,10)\\,0.02/TB\\,0)")
	out := filepath.Join(dir, "out.mkv")
	if err := os.WriteFile(out, []byte("older output"), 0o644); err != nil {
		t.Fatal(err)
	}
	// --verify=off: each chunk's check would find the shards' times wrong
	// before the join (TestE2EHostileWorkers); the output's verification
	// still compares its frame times with the source's.
	code, stdout, stderr := runMaster(t, "encode", "--workers", w.Addr, "--output", out, "--force", "--verify", "off",
		"--segment-seconds", "2", "--state-dir", filepath.Join(dir, "state"), testdata("h264_aac_640x360_30fps_4s.mp4"))
	if code == 0 {
		t.Fatalf("master encode succeeded on shards with wrong times:\n%s", stdout)
	}
	if !strings.Contains(stderr, "verification failed") || !strings.Contains(stderr, "out.unverified.mkv") || !strings.Contains(stdout, "FAILED") {
		t.Errorf("the failure does not say where the unverified output is:\n%s\n%s", stdout, stderr)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "older output" {
		t.Errorf("the output path was touched: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.unverified.mkv")); err != nil {
		t.Errorf("the unverified output is not kept: %v", err)
	}
	// The same job again, without --force: the unverified output the
	// first run left is the job's own, so it is replaced, not in the way.
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runMaster(t, "encode", "--workers", w.Addr, "--output", out, "--verify", "off",
		"--segment-seconds", "2", "--state-dir", filepath.Join(dir, "state"), testdata("h264_aac_640x360_30fps_4s.mp4"))
	if code == 0 || strings.Contains(stderr, "exists") || !strings.Contains(stdout, "FAILED") {
		t.Errorf("the second run exited %d, want it to verify again (and fail) over the unverified output:\n%s\n%s", code, stdout, stderr)
	}
}

// TestE2EWrongPictureHashes: a worker whose ffmpeg reports other picture
// hashes than it decoded (a broken or lying worker, or a chunk whose tail
// decodes other than its head promised) does not get its shards taken on
// its word or thrown away on it: the master decodes those chunks whole
// itself, finds them right, keeps the shards, and says so.
func TestE2EWrongPictureHashes(t *testing.T) {
	dir := t.TempDir()
	liar := filepath.Join(dir, "ffmpeg")
	script := `#!/bin/sh
out=$(mktemp)
ffmpeg "$@" >"$out"
rc=$?
sed 's/, [0-9a-f]\{32\}$/, 0123456789abcdef0123456789abcdef/' "$out"
rm -f "$out"
exit $rc
`
	if err := os.WriteFile(liar, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w := e2etest.StartWorker(t, bins["worker"], "", "",
		fmt.Sprintf("encoder: ffmpeg\nffmpeg: {preset: ultrafast, binary: %s}\nlimits: {max_concurrent_tasks: 2}\n", liar))
	out := filepath.Join(dir, "out.mkv")
	code, stdout, stderr := runMaster(t, "encode", "--workers", w.Addr, "--output", out, "--segment-seconds", "2",
		"--state-dir", filepath.Join(dir, "state"), testdata("h264_aac_640x360_30fps_4s.mp4"))
	if code != 0 {
		t.Fatalf("master encode exited %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"verification:   OK", "2 by their first pictures here", "2 of them decoded whole here after all"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary does not say %q:\n%s", want, stdout)
		}
	}
	srcFrames, _ := probeFrames(t, testdata("h264_aac_640x360_30fps_4s.mp4"))
	if got, _ := probeFrames(t, out); got != srcFrames {
		t.Errorf("output has %d frames, the source %d", got, srcFrames)
	}
}

// A fresh job sends its first chunks while its source is still being
// decoded: here the ground-truth decode runs at the source's own pace
// (ffmpeg's -re), 8 s, and the first chunk is stored long before it ends.
func TestE2ELiveSplit(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mp4")
	gen := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=8",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "24", "-keyint_min", "24", "-sc_threshold", "0", "-pix_fmt", "yuv420p", src)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make source: %v\n%s", err, out)
	}
	// The ground-truth decode at the source's pace, its end written down.
	slow, decoded := filepath.Join(dir, "ffmpeg"), filepath.Join(dir, "decoded")
	script := "#!/bin/sh\ncase \"$*\" in *pipe:1*) ffmpeg -re \"$@\"; rc=$?; date -u +%Y-%m-%dT%H:%M:%S.%NZ > " + decoded +
		"; exit $rc;; esac\nexec ffmpeg \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w := e2etest.StartWorker(t, bins["worker"], "", "", "encoder: simulated\n")
	code, stdout, stderr := runMaster(t, "encode", "--workers", w.Addr, "--output", filepath.Join(dir, "out.mkv"),
		"--segment-seconds", "1", "--state-dir", filepath.Join(dir, "state"), "--ffmpeg", slow, src)
	if code != 0 {
		t.Fatalf("master exited %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "cut and sent while the source was decoded") {
		t.Errorf("the summary should say the chunks were cut while the source was decoded:\n%s", stdout)
	}
	var first time.Time
	for _, line := range strings.Split(w.Logs.String(), "\n") {
		if strings.Contains(line, `msg="chunk stored"`) {
			f := strings.Fields(line)
			first, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
			break
		}
	}
	// However loaded the machine, the decode takes the source's 8 s: the
	// first chunk must be stored before it ends.
	raw, err := os.ReadFile(decoded)
	if err != nil {
		t.Fatal(err)
	}
	end, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if first.IsZero() || !first.Before(end) {
		t.Errorf("first chunk stored at %v, after the source's decode ended at %v", first, end)
	}
}
