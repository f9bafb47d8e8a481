package main

// End-to-end tests of replication: encode --replicas, reconstruct around
// dead workers and bad copies, repair and rebalance, with the real
// binaries. They need the worker side of ReplicateShard: until a worker
// implements it, they fail with Unimplemented.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/master"
)

// replYAML is the workers' config: fast ffmpeg, and whatever the worker
// side of replication needs to let loopback peers pull from each other.
const replYAML = fastFFmpeg

const replClip = "h264_noaudio_320x240_30000-1001_3s.mkv" // 90 pictures

// replEncode encodes replClip with --replicas r onto ws.
func replEncode(t *testing.T, dir, id string, r int, ws ...*e2etest.Worker) []string {
	t.Helper()
	args := []string{"encode", "--workers", addrs(ws...), "--output", filepath.Join(dir, "out.mkv"), "--segment-seconds", "1",
		"--state-dir", filepath.Join(dir, "state"), "--video-id", id, "--replicas", itoa(r), testdata(replClip)}
	code, stdout, stderr := runMaster(t, args...)
	if code != 0 {
		t.Fatalf("master encode --replicas %d exited %d\n%s\n%s", r, code, stdout, stderr)
	}
	return args
}

func itoa(n int) string { return strconv.Itoa(n) }

// replReconstruct rebuilds the video into out and checks it is the
// source's pictures, verified.
func replReconstruct(t *testing.T, dir, id, out string, ws ...*e2etest.Worker) string {
	t.Helper()
	args := []string{"reconstruct", "--video-id", id, "--state-dir", filepath.Join(dir, "state"), "--output", out}
	if len(ws) > 0 {
		args = append(args, "--workers", addrs(ws...))
	}
	code, stdout, stderr := runMaster(t, args...)
	if code != 0 || !strings.Contains(stdout, "verification:   OK") {
		t.Fatalf("master reconstruct exited %d, want a verified output\n%s\n%s", code, stdout, stderr)
	}
	if frames, _ := probeFrames(t, out); frames != 90 {
		t.Fatalf("reconstructed output has %d frames, want 90", frames)
	}
	return stdout
}

// replCopies checks every chunk of the map has want copies, on distinct
// workers, and returns the map.
func replCopies(t *testing.T, dir, id string, want int) *master.JobState {
	t.Helper()
	s, err := master.LoadState(filepath.Join(dir, "state"), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Chunks {
		seen := map[string]bool{}
		for _, r := range c.Copies() {
			seen[r.Worker] = true
		}
		if len(seen) != want || len(c.Copies()) != want {
			t.Fatalf("chunk %d has copies %+v, want %d on distinct workers", c.Index, c.Copies(), want)
		}
	}
	return s
}

// R=2 over three workers, one killed: the video is rebuilt frame-exact
// from the other copies, nothing encoded again.
func TestE2EReplicasSurviveAWorker(t *testing.T) {
	ws := []*e2etest.Worker{
		e2etest.StartWorker(t, bins["worker"], "", "", replYAML),
		e2etest.StartWorker(t, bins["worker"], "", "", replYAML),
		e2etest.StartWorker(t, bins["worker"], "", "", replYAML),
	}
	dir := t.TempDir()
	replEncode(t, dir, "r2", 2, ws...)
	replCopies(t, dir, "r2", 2)
	ws[0].Kill()
	stdout := replReconstruct(t, dir, "r2", filepath.Join(dir, "again.mkv"))
	if !strings.Contains(stdout, "0 encoded again") {
		t.Fatalf("chunks were encoded again although a copy of each was alive:\n%s", stdout)
	}
}

// One copy's bytes rotted on disk: reconstruct still reads every chunk
// exactly (from the other copy), and repair replaces the bad copy.
func TestE2EReplicaCorruptRepair(t *testing.T) {
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", replYAML)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", replYAML)
	dir := t.TempDir()
	replEncode(t, dir, "rot2", 2, w1, w2)
	corruptFile(t, filepath.Join(w1.Root, "rot2", "chunk_1.shard"))
	stdout := replReconstruct(t, dir, "rot2", filepath.Join(dir, "again.mkv"))
	if !strings.Contains(stdout, "0 encoded again") {
		t.Fatalf("a chunk was encoded again although its other copy was good:\n%s", stdout)
	}
	code, out, stderr := runMaster(t, "repair", "--video-id", "rot2", "--state-dir", filepath.Join(dir, "state"), "--workers", addrs(w1, w2))
	if code != 0 {
		t.Fatalf("master repair exited %d\n%s\n%s", code, out, stderr)
	}
	// The worker quarantined the copy it found corrupt when reconstruct
	// read it: repair finds it missing or, had nothing read it, corrupt.
	if !strings.Contains(out, "copied from "+w2.Addr) {
		t.Fatalf("repair did not copy chunk 1 back onto %s:\n%s", w1.Addr, out)
	}
	replCopies(t, dir, "rot2", 2)
	if _, err := os.Stat(filepath.Join(w1.Root, "rot2", "chunk_1.shard")); err != nil {
		t.Fatalf("chunk 1 is not back on %s: %v", w1.Addr, err)
	}
	replReconstruct(t, dir, "rot2", filepath.Join(dir, "third.mkv"), w1)
}

// A worker wiped (its store emptied, restarted on its address): repair
// restores two copies of every chunk.
func TestE2EWipedWorkerRepair(t *testing.T) {
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", replYAML)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", replYAML)
	dir := t.TempDir()
	replEncode(t, dir, "wipe", 2, w1, w2)
	w2.Stop()
	if err := os.RemoveAll(w2.Root); err != nil {
		t.Fatal(err)
	}
	w2 = e2etest.StartWorker(t, bins["worker"], w2.Root, w2.Addr, replYAML)
	w2.WaitHealthy()
	code, out, stderr := runMaster(t, "repair", "--video-id", "wipe", "--state-dir", filepath.Join(dir, "state"), "--json")
	if code != 0 {
		t.Fatalf("master repair exited %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, `"found": "missing"`) {
		t.Fatalf("repair found nothing missing:\n%s", out)
	}
	replCopies(t, dir, "wipe", 2)
	replReconstruct(t, dir, "wipe", filepath.Join(dir, "again.mkv"), w2)
}

// An empty worker joins: rebalance moves bytes onto it, and the video is
// still rebuilt exactly.
func TestE2ERebalanceToNewWorker(t *testing.T) {
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", replYAML)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", replYAML)
	dir := t.TempDir()
	replEncode(t, dir, "bal", 1, w1, w2)
	w3 := e2etest.StartWorker(t, bins["worker"], "", "", replYAML)
	code, out, stderr := runMaster(t, "rebalance", "--workers", addrs(w1, w2, w3), "--state-dir", filepath.Join(dir, "state"),
		"--tolerance", "0.5", "--json")
	if code != 0 {
		t.Fatalf("master rebalance exited %d\n%s\n%s", code, out, stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(w3.Root, "bal"))
	if len(entries) == 0 {
		t.Fatalf("nothing moved onto the new worker:\n%s", out)
	}
	replCopies(t, dir, "bal", 1)
	replReconstruct(t, dir, "bal", filepath.Join(dir, "again.mkv"), w1, w2, w3)
}

func corruptFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff // bit rot: same size, other bytes
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
