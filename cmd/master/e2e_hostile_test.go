package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/e2etest"
	pb "github.com/videoshard/videoshard/proto"
)

// hostileWorker speaks the worker's wire as a broken or hostile worker
// would: it stores each chunk's bytes as its "shard" and then lies about
// them or serves them badly, as mode says.
type hostileWorker struct {
	pb.UnimplementedVideoProcessingServiceServer
	Addr string
	// health is the encoder its health reports, and result the one its
	// chunks' metadata say.
	health, result string
	// claimSize, when > 0, is the encoded size its ProcessChunk answers
	// claim, and downloadSize the size its DownloadShard metadata claims.
	claimSize, downloadSize int64
	// claimFrames is the picture count its metadata claim.
	claimFrames int64
	// trickle, when > 0, makes DownloadShard send one byte per interval.
	trickle time.Duration
	// unreachable makes the worker die at the first DownloadShard: a
	// worker that died after storing its chunks.
	unreachable bool
	stop        func()
	// message is its error for every ProcessChunk when set.
	message string
	// shard, when set, is what it stores for every chunk instead of the
	// chunk's bytes.
	shard []byte
	// retime makes it encode each chunk for real (its trim of it), but
	// give the pictures twice their times.
	retime bool
	// hangAfter, when > 0, makes it answer that many ProcessChunk calls
	// and take every later one without ever answering.
	hangAfter int
	calls     int // guarded by mu

	mu     *sync.Mutex
	shards map[string][]byte
	sent   map[string]int64 // the size of the chunk each shard is of
}

func startHostile(t *testing.T, w *hostileWorker) *hostileWorker {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	w.Addr, w.shards, w.sent, w.mu = lis.Addr().String(), map[string][]byte{}, map[string]int64{}, &sync.Mutex{}
	w.stop = sync.OnceFunc(func() { go srv.Stop() })
	pb.RegisterVideoProcessingServiceServer(srv, w)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return w
}

func (w *hostileWorker) CheckHealth(context.Context, *pb.HealthCheckRequest) (*pb.HealthCheckResponse, error) {
	return &pb.HealthCheckResponse{IsHealthy: true, WorkerId: "hostile\x1b]0;pwned\x07", Encoder: w.health,
		MaxConcurrentTasks: 1, MaxUnaryChunkBytes: 64 << 20, MaxChunkBytes: 64 << 20,
		Features: []string{"frame_trim"}}, nil
}

func (w *hostileWorker) GetVideoMetadata(context.Context, *pb.GetVideoMetadataRequest) (*pb.GetVideoMetadataResponse, error) {
	return nil, status.Error(codes.NotFound, "no such video")
}

func (w *hostileWorker) ProcessChunk(ctx context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	if w.message != "" {
		return nil, status.Error(codes.Internal, w.message)
	}
	w.mu.Lock()
	w.calls++
	hang := w.hangAfter > 0 && w.calls > w.hangAfter
	w.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	loc := fmt.Sprintf("%s/chunk_%d.shard", req.GetVideoId(), req.GetChunkIndex())
	data := req.GetChunkData()
	if w.shard != nil {
		data = w.shard
	}
	if w.retime {
		var err error
		if data, err = slowEncode(ctx, data, req.GetTrim()); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	w.mu.Lock()
	w.shards[loc], w.sent[loc] = data, int64(len(req.GetChunkData()))
	w.mu.Unlock()
	meta := w.meta(req.GetVideoId(), req.GetChunkIndex(), loc, data)
	if w.claimSize > 0 {
		meta.EncodedSize = w.claimSize
	}
	return &pb.ProcessChunkResponse{Success: true, WorkerId: "hostile", ShardLocation: loc, OriginalSize: meta.OriginalSize,
		EncodedSize: meta.EncodedSize, ChecksumSha256: meta.ChecksumSha256, Metadata: meta}, nil
}

func (w *hostileWorker) meta(video string, index int32, loc string, data []byte) *pb.ChunkMetadata {
	sum := sha256.Sum256(data)
	w.mu.Lock()
	sent := w.sent[loc]
	w.mu.Unlock()
	return &pb.ChunkMetadata{ChunkIndex: index, VideoId: video, ShardLocation: loc, Encoder: w.result,
		OriginalSize: sent, FrameCount: w.claimFrames, EncodedSize: int64(len(data)), ChecksumSha256: hex.EncodeToString(sum[:])}
}

func (w *hostileWorker) DownloadShard(req *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	if w.unreachable {
		w.stop()
		return status.Error(codes.Unavailable, "connection refused")
	}
	w.mu.Lock()
	data, ok := w.shards[req.GetShardLocation()]
	w.mu.Unlock()
	if !ok {
		return status.Error(codes.NotFound, "no such shard")
	}
	var video string
	var index int32
	fmt.Sscanf(strings.ReplaceAll(req.GetShardLocation(), "/chunk_", " "), "%s %d", &video, &index)
	meta := w.meta(video, index, req.GetShardLocation(), data)
	if w.downloadSize > 0 {
		meta.EncodedSize = w.downloadSize
		data = make([]byte, 1<<20)
	}
	if err := stream.Send(&pb.DownloadShardResponse{Metadata: meta}); err != nil {
		return err
	}
	for sent := int64(0); sent < meta.EncodedSize; {
		n := min(int64(len(data)), meta.EncodedSize-sent)
		if w.trickle > 0 {
			n = 1
			select {
			case <-time.After(w.trickle):
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
		}
		if err := stream.Send(&pb.DownloadShardResponse{Data: data[:n]}); err != nil {
			return err
		}
		sent += n
		if w.downloadSize == 0 {
			data = data[n:]
		}
	}
	return nil
}

// TestE2EHostileWorkers: each way a worker can lie or stall, tried against
// the real master: the job fails, quickly and saying why, or succeeds on
// an honest worker, but never takes the lie for a result, never hangs,
// never leaves a partial download behind and never prints the worker's
// control characters.
func TestE2EHostileWorkers(t *testing.T) {
	const clip = "h264_aac_640x360_30fps_4s.mp4"
	tests := []struct {
		name   string
		worker hostileWorker
		honest bool     // an honest (simulated) worker joins the job
		bomb   bool     // the worker's shards are bigBlackPictures
		want   []string // in stderr (failure) or stdout (success)
	}{
		{"claims simulated shards while its health says ffmpeg",
			hostileWorker{health: "ffmpeg", result: "simulated"}, false, false,
			[]string{`the worker's health says encoder "ffmpeg", its chunk's metadata "simulated"`}},
		{"claims a 1 TiB shard",
			hostileWorker{health: "simulated", result: "simulated", claimSize: 1 << 40}, false, false,
			[]string{"has 1099511627776 bytes"}},
		{"serves a 1 TiB shard",
			hostileWorker{health: "simulated", result: "simulated", downloadSize: 1 << 40}, false, false,
			[]string{"the worker offers 1099511627776 bytes, the chunk map says"}},
		{"sends a byte now and then",
			hostileWorker{health: "simulated", result: "simulated", trickle: 300 * time.Millisecond}, false, false,
			[]string{"the worker stopped sending", "not received within"}},
		{"dies after storing its chunks",
			hostileWorker{health: "simulated", result: "simulated", unreachable: true}, true, false,
			[]string{"encoded again:", "its worker cannot be reached"}},
		{"takes chunks and never answers",
			hostileWorker{health: "simulated", result: "simulated", hangAfter: 1}, true, false,
			[]string{"straggler: " + "127.0.0.1:", "has not answered in"}},
		{"answers with pictures of 16 million pixels", hostileWorker{health: "ffmpeg", result: "ffmpeg", claimFrames: 30}, false, true,
			[]string{"chunk fails picture verification", "pictures not of the reference's size: they have more than 230400 pixels"}},
		{"answers with the right pictures at twice their times", hostileWorker{health: "ffmpeg", result: "ffmpeg", claimFrames: 30, retime: true}, false, false,
			[]string{"chunk fails picture verification", "pictures shown at other times: picture 1 is shown 0.066000s after the first compared, the reference's 0.033000s"}},
		{"answers with control characters",
			hostileWorker{health: "simulated", result: "simulated", message: "boom\x1b]0;pwned\x07\x1b[2J\u202e"}, false, false,
			[]string{"boom\uFFFD]0;pwned\uFFFD\uFFFD[2J\uFFFD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.bomb {
				tt.worker.shard = bigBlackPictures(t)
			}
			w := startHostile(t, &tt.worker)
			workers := w.Addr
			if tt.honest {
				workers += "," + e2etest.StartWorker(t, bins["worker"], "", "", "encoder: simulated\n").Addr
			}
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			start := time.Now()
			code, stdout, stderr := runMaster(t, "encode", "--workers", workers, "--output", filepath.Join(dir, "out.mkv"),
				// The hostile worker answers ProcessChunk only: the chunk sent ahead to it
				// as an upload is refused, and sent again unary.
				"--segment-seconds", "1", "--state-dir", state, "--max-attempts", "2", "--download-idle-timeout", "1s",
				"--straggler-min", "1s", testdata(clip))
			took := time.Since(start)
			out := stderr
			if tt.honest {
				if code != 0 {
					t.Fatalf("master encode exited %d:\n%s\n%s", code, stdout, stderr)
				}
				out = stdout + stderr
			} else if code == 0 {
				t.Fatalf("master encode succeeded:\n%s", stdout)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output does not say %q:\n%s", want, out)
				}
			}
			if strings.ContainsAny(stdout+stderr, "\x1b\x07\u202e") {
				t.Errorf("the worker's control characters reached the terminal:\n%q", stdout+stderr)
			}
			if took > 2*time.Minute {
				t.Errorf("the job took %v", took)
			}
			var big []string
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() && fi.Size() > 16<<20 {
					big = append(big, fmt.Sprintf("%s (%d bytes)", p, fi.Size()))
				}
				return nil
			})
			if len(big) > 0 {
				t.Errorf("downloads left behind: %v", big)
			}
		})
	}
}

// slowEncode encodes chunk's pictures (trim's of them, if set) as the
// ffmpeg worker does, but shows each twice as long.
func slowEncode(ctx context.Context, chunk []byte, trim *pb.FrameTrim) ([]byte, error) {
	dir, err := os.MkdirTemp("", "slow-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "chunk"), filepath.Join(dir, "shard.mkv")
	if err := os.WriteFile(in, chunk, 0o600); err != nil {
		return nil, err
	}
	vf := "setpts=2*(PTS-STARTPTS)"
	if trim != nil {
		vf = fmt.Sprintf("trim=start_frame=%d:end_frame=%d,", trim.GetStartFrame(), trim.GetStartFrame()+trim.GetFrameCount()) + vf
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-i", in, "-map", "0:v:0", "-vf", vf,
		"-fps_mode", "passthrough", "-enc_time_base", "-1", "-c:v", "libx264", "-preset", "ultrafast", "-f", "matroska", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %v: %s", err, b)
	}
	return os.ReadFile(out)
}

// bigBlackPictures is a Matroska file of a few kilobytes whose five
// pictures are 4096x4096: decoded, 25 MB each.
func bigBlackPictures(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.mkv")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=black:size=4096x4096:rate=30",
		"-frames:v", "5", "-c:v", "libx264", "-preset", "ultrafast", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestE2EReconstructWithAWorkerGone: reconstruct of a job one of whose
// workers is gone encodes that worker's chunks again on the others while
// the chunk map's input is still there, and names them when it is not.
func TestE2EReconstructWithAWorkerGone(t *testing.T) {
	const clip = "h264_aac_640x360_30fps_4s.mp4"
	dir := t.TempDir()
	input := filepath.Join(dir, clip)
	data, err := os.ReadFile(testdata(clip))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(input, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := e2etest.StartWorker(t, bins["worker"], "", "", "encoder: simulated\n")
	b := e2etest.StartWorker(t, bins["worker"], "", "", "encoder: simulated\n")
	state := filepath.Join(dir, "state")
	args := []string{"--workers", addrs(a, b), "--state-dir", state, "--video-id", "v"}
	if code, stdout, stderr := runMaster(t, append([]string{"encode", "--output", filepath.Join(dir, "out.mkv"), "--segment-seconds", "1"},
		append(args, input)...)...); code != 0 {
		t.Fatalf("master encode exited %d:\n%s\n%s", code, stdout, stderr)
	}
	a.Kill()

	code, stdout, stderr := runMaster(t, append([]string{"reconstruct", "--output", filepath.Join(dir, "again.mkv")}, args...)...)
	if code != 0 {
		t.Fatalf("master reconstruct exited %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "its worker cannot be reached: "+a.Addr) {
		t.Errorf("the summary does not say which chunks were encoded again, and why:\n%s", stdout)
	}
	if fi, err := os.Stat(filepath.Join(dir, "again.mkv")); err != nil || fi.Size() == 0 {
		t.Errorf("no output: %v", err)
	}

	// Everything is on b now; with b gone too and the input moved, the
	// chunks cannot be encoded again: the error names them.
	b.Kill()
	if err := os.Rename(input, input+".moved"); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runMaster(t, append([]string{"reconstruct", "--output", filepath.Join(dir, "third.mkv")}, args...)...)
	if code == 0 || !strings.Contains(stderr, "shards of chunks [0 1 2 3] are lost") || !strings.Contains(stderr, "is not there as it was") {
		t.Errorf("reconstruct with every worker gone and no input: exit %d\n%s", code, stderr)
	}
}
