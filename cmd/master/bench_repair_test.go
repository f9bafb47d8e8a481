package main

// The benchmark behind repair's figure: a worker holding shards of a
// video with --replicas 2 is lost, and `master repair` makes the missing
// copies on the survivors, worker to worker, with 1, 2 and 3 streams.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// repairChunkBytes is each synthetic chunk's size.
const repairChunkBytes = 64 << 20

// repairFarm stores a video of n synthetic chunks of repairChunkBytes on
// ws, chunk k on ws[k%len] (uploaded, encoded by the simulated encoder at
// ratio 1: the shard is the chunk's bytes) and copied onto ws[(k+1)%len]
// (ReplicateShard, as encode --replicas 2 does), and saves the chunk map
// that job would have left in stateDir. Random bytes, fresh per chunk:
// no two shards alike.
func repairFarm(b *testing.B, ws []*e2etest.Worker, stateDir, videoID string, n int) {
	b.Helper()
	ctx := context.Background()
	clients := make([]*client.Client, len(ws))
	for i, w := range ws {
		c, err := client.Dial(ctx, w.Addr, client.DialOptions{Insecure: true})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	state := &master.JobState{VideoID: videoID, Source: "synthetic", Replicas: 2, Output: "synthetic.mkv"}
	path := filepath.Join(b.TempDir(), "chunk.bin")
	buf := make([]byte, repairChunkBytes)
	for k := range n {
		rng := rand.NewChaCha8([32]byte{byte(k), byte(k >> 8), byte(k >> 16)})
		rng.Read(buf)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			b.Fatal(err)
		}
		first, second := k%len(ws), (k+1)%len(ws)
		resp, err := clients[first].ProcessFile(ctx, videoID, int32(k), path, nil)
		if err != nil {
			b.Fatalf("upload chunk %d: %v", k, err)
		}
		m := resp.GetMetadata()
		meta, _, err := clients[second].ReplicateShard(ctx, ws[first].Addr, videoID, int32(k))
		if err != nil || meta.GetChecksumSha256() != m.GetChecksumSha256() {
			b.Fatalf("copy chunk %d: %v (checksum %s, want %s)", k, err, meta.GetChecksumSha256(), m.GetChecksumSha256())
		}
		state.Chunks = append(state.Chunks, master.ChunkState{
			Index: k, Size: repairChunkBytes, Done: true, Worker: ws[first].Addr, Location: m.GetShardLocation(),
			Checksum: m.GetChecksumSha256(), Encoder: m.GetEncoder(), EncodedSize: m.GetEncodedSize(), Attempts: 1,
			Replicas: []master.Replica{{Worker: ws[first].Addr, Location: m.GetShardLocation()},
				{Worker: ws[second].Addr, Location: meta.GetShardLocation(), From: ws[first].Addr}},
		})
	}
	os.Remove(path)
	if err := state.Save(stateDir); err != nil {
		b.Fatal(err)
	}
}

// repairUndo deletes the copies repair made (those the chunk map in
// stateDir has beyond before's) from their workers, and puts back the
// chunk map's files as they were (saved in backup): the next repair has
// the same work to do.
func repairUndo(b *testing.B, stateDir, backup string, before *master.JobState, ws []*e2etest.Worker) {
	b.Helper()
	after, err := master.LoadState(stateDir, before.VideoID)
	if err != nil {
		b.Fatal(err)
	}
	byAddr := map[string]*e2etest.Worker{}
	for _, w := range ws {
		byAddr[w.Addr] = w
	}
	ctx := context.Background()
	for i, c := range after.Chunks {
		for _, r := range c.Copies() {
			if slices.ContainsFunc(before.Chunks[i].Copies(), func(o master.Replica) bool { return o.Worker == r.Worker }) {
				continue
			}
			resp, err := byAddr[r.Worker].Client.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: before.VideoID, ChunkIndex: int32(c.Index)})
			if err != nil || !resp.GetDeleted() {
				b.Fatalf("delete the copy of chunk %d on %s: %v %v", c.Index, r.Worker, resp, err)
			}
		}
	}
	repairCopyDir(b, backup, stateDir)
}

// repairCopyDir replaces the files of dst with those of src.
func repairCopyDir(b *testing.B, src, dst string) {
	b.Helper()
	if err := os.RemoveAll(dst); err != nil {
		b.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRepairLostWorker stores a video whose shards total
// VIDEOSHARD_BENCH_REPAIR_BYTES (default 2 GiB; 64 MiB chunks) with two
// copies each across 4 simulated workers (see repairFarm: the shards are
// written directly, no source is split), kills one worker and wipes its
// store, then runs `master repair` with --parallel 1, 2 and 3 in turn,
// VIDEOSHARD_BENCH_REPAIR_ROUNDS (default 1) rounds, each run undoing the
// last's copies first. It reports each parallelism's median wall (every
// surviving copy verified byte for byte, then the copies made) and the
// copy phase's MB/s (the bytes the lost worker held, over the time spent
// copying them onto the 3 survivors).
func BenchmarkRepairLostWorker(b *testing.B) {
	size := mbenchEnvInt(b, "VIDEOSHARD_BENCH_REPAIR_BYTES", 2<<30)
	rounds := mbenchEnvInt(b, "VIDEOSHARD_BENCH_REPAIR_ROUNDS", 1)
	n := max(4, size/repairChunkBytes)
	const yaml = "encoder: simulated\nsimulated: {ratio: 1}\nlimits: {max_concurrent_tasks: 2}\n"
	var ws []*e2etest.Worker
	for range 4 {
		ws = append(ws, mbenchWorker(b, yaml))
	}
	dir := b.TempDir()
	stateDir := filepath.Join(dir, "state")
	const id = "repair-bench"
	start := time.Now()
	repairFarm(b, ws, stateDir, id, n)
	b.Logf("%d chunks of %d MiB, 2 copies each on 4 workers, stored in %.1f s", n, repairChunkBytes>>20, time.Since(start).Seconds())

	lost := ws[0]
	lost.Kill()
	if err := os.RemoveAll(lost.Root); err != nil {
		b.Fatal(err)
	}
	backup := filepath.Join(dir, "state.before")
	repairCopyDir(b, stateDir, backup)
	before, err := master.LoadState(backup, id)
	if err != nil {
		b.Fatal(err)
	}
	var workers []string
	for _, w := range ws {
		workers = append(workers, w.Addr)
	}
	walls, rates := map[int][]float64{}, map[int][]float64{}
	var held int64
	for i := 0; i < b.N; i++ {
		for round := range rounds {
			for _, p := range []int{1, 2, 3} {
				r := mbenchMaster(b, "repair", "--video-id", id, "--state-dir", stateDir, "--workers", strings.Join(workers, ","),
					"--parallel", fmt.Sprint(p), "--json", "--timeout", "0")
				var rep master.RepairReport
				if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
					b.Fatalf("repair --json: %v\n%s", err, r.stdout)
				}
				if len(rep.Short) > 0 || rep.Copied == 0 {
					b.Fatalf("repair --parallel %d left chunks short or copied nothing: %+v", p, rep)
				}
				held = rep.CopiedBytes
				mbps := float64(rep.CopiedBytes) / 1e6 / rep.CopySeconds
				walls[p], rates[p] = append(walls[p], r.wall.Seconds()), append(rates[p], mbps)
				b.Logf("round %d, --parallel %d: %d copies, %.0f MB in %.1f s copying (%.0f MB/s); wall %.1f s",
					round, p, rep.Copied, float64(rep.CopiedBytes)/1e6, rep.CopySeconds, mbps, r.wall.Seconds())
				repairUndo(b, stateDir, backup, before, ws[1:])
			}
		}
	}
	b.Logf("lost worker held %.0f MB of the video's %.0f MB (x2 copies); medians:", float64(held)/1e6, float64(n*repairChunkBytes)/1e6)
	for _, p := range []int{1, 2, 3} {
		w, m := mbenchMedian(walls[p]), mbenchMedian(rates[p])
		b.Logf("  --parallel %d: wall %.1f s, copy %.0f MB/s (%.2fx --parallel 1)", p, w, m, m/mbenchMedian(rates[1]))
		b.ReportMetric(w, fmt.Sprintf("wall-s_p%d", p))
		b.ReportMetric(m, fmt.Sprintf("copy-MB/s_p%d", p))
	}
	b.ReportMetric(float64(held)/1e6, "repaired-MB")
	b.ReportMetric(mbenchMedian(rates[3])/mbenchMedian(rates[1]), "copy-p3/p1")
}
