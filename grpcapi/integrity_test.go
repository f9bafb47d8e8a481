package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

func health(t *testing.T, h *harness) *pb.HealthCheckResponse {
	t.Helper()
	resp, err := h.client.CheckHealth(context.Background(), &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func listed(t *testing.T, h *harness, video string, chunk int32) bool {
	t.Helper()
	resp, err := h.client.ListShards(context.Background(), &pb.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range resp.GetVideos() {
		for _, c := range v.GetChunks() {
			if v.GetVideoId() == video && c.GetChunkIndex() == chunk {
				return true
			}
		}
	}
	return false
}

func flipShardByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func getShard(h *harness, video string, chunk int32) (*pb.GetShardResponse, error) {
	return h.client.GetShard(context.Background(), &pb.GetShardRequest{VideoId: video, ChunkIndex: &chunk})
}

func downloadAll(h *harness, video string, chunk int32) ([]byte, error) {
	stream, err := h.client.DownloadShard(context.Background(), &pb.GetShardRequest{VideoId: video, ChunkIndex: &chunk})
	if err != nil {
		return nil, err
	}
	var data []byte
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return data, err
		}
		data = append(data, msg.GetData()...)
	}
}

func uploadChunk(t *testing.T, h *harness, hdr *pb.UploadHeader, data []byte, frame int) (*pb.ProcessChunkResponse, error) {
	t.Helper()
	stream, err := h.client.UploadChunk(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hdr.TotalSize = int64(len(data))
	if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: hdr}}); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += frame {
		if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: data[off:min(off+frame, len(data))]}}); err != nil {
			break // the status comes with CloseAndRecv
		}
	}
	return stream.CloseAndRecv()
}

// A corrupted shard is DataLoss once, counted and quarantined; from then on
// it is NotFound and no longer listed, through every read path.
func TestCorruptedShard_CountedAndQuarantined(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{FrameBytes: 5})
	ctx := context.Background()
	store := func(chunk int32) *pb.ProcessChunkResponse {
		resp, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: chunk, ChunkData: []byte("chunk bytes " + strings.Repeat("x", int(chunk)))})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	flipped := store(0)
	downloaded := store(1)
	truncated := store(2)
	missing := store(3)
	store(4) // stays intact
	flipShardByte(t, flipped.GetShardLocation())
	flipShardByte(t, downloaded.GetShardLocation())
	if err := os.Truncate(truncated.GetShardLocation(), 3); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(missing.GetShardLocation()); err != nil {
		t.Fatal(err)
	}
	if got := health(t, h); got.GetCorruptedShardsDetected() != 0 || got.GetQuarantinedShards() != 0 {
		t.Fatalf("counters before any read: %v", got)
	}

	reads := []struct {
		name  string
		chunk int32
		read  func() error
	}{
		{"GetShard, flipped byte", 0, func() error { _, err := getShard(h, "v", 0); return err }},
		{"DownloadShard, flipped byte", 1, func() error { _, err := downloadAll(h, "v", 1); return err }},
		{"GetShard, truncated", 2, func() error { _, err := getShard(h, "v", 2); return err }},
		{"DownloadShard, missing", 3, func() error { _, err := downloadAll(h, "v", 3); return err }},
	}
	for i, r := range reads {
		if err := r.read(); status.Code(err) != codes.DataLoss {
			t.Fatalf("%s: %v, want DataLoss", r.name, err)
		}
		got := health(t, h)
		if got.GetCorruptedShardsDetected() != int64(i+1) || got.GetQuarantinedShards() != int64(i+1) {
			t.Fatalf("after %s: corrupted %d, quarantined %d; want %d each", r.name,
				got.GetCorruptedShardsDetected(), got.GetQuarantinedShards(), i+1)
		}
		if _, err := getShard(h, "v", r.chunk); status.Code(err) != codes.NotFound {
			t.Fatalf("%s, read again: %v, want NotFound", r.name, err)
		}
		if _, err := downloadAll(h, "v", r.chunk); status.Code(err) != codes.NotFound {
			t.Fatalf("%s, downloaded again: %v, want NotFound", r.name, err)
		}
		if listed(t, h, "v", r.chunk) {
			t.Fatalf("%s: still listed", r.name)
		}
	}
	if got, err := getShard(h, "v", 4); err != nil || string(got.GetShardData()) != "chunk bytes xxxx" {
		t.Fatalf("intact chunk: %v", err)
	}
	if got := h.srv.CorruptedShards(); got != 4 {
		t.Fatalf("CorruptedShards = %d, want 4", got)
	}
	// A quarantined chunk can be stored again.
	again := store(0)
	if got, err := getShard(h, "v", 0); err != nil || sha(got.GetShardData()) != again.GetChecksumSha256() {
		t.Fatalf("re-stored chunk: %v", err)
	}
}

// Reads of one corrupt shard, at once and through both read paths, are
// each DataLoss (or NotFound, once it is quarantined), never the bytes; it
// is counted and quarantined once. A download never carries the whole
// corrupt shard.
func TestCorruptedShard_ConcurrentReadsCountOnce(t *testing.T) {
	for _, damage := range []string{"flipped byte", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			h := newHarness(t, &fakeEncoder{}, Config{FrameBytes: 1000})
			data := make([]byte, 100_000)
			for i := range data {
				data[i] = byte(i * 31)
			}
			resp, err := h.client.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: data})
			if err != nil {
				t.Fatal(err)
			}
			if damage == "truncated" {
				if err := os.Truncate(resp.GetShardLocation(), 50_000); err != nil {
					t.Fatal(err)
				}
			} else {
				flipShardByte(t, resp.GetShardLocation())
			}
			const readers = 6
			errs := make(chan error, readers)
			got := make(chan int, readers)
			for i := range readers {
				go func() {
					if i%2 == 0 {
						_, err := getShard(h, "v", 0)
						errs <- err
						got <- 0
						return
					}
					b, err := downloadAll(h, "v", 0)
					errs <- err
					got <- len(b)
				}()
			}
			for range readers {
				if err := <-errs; status.Code(err) != codes.DataLoss && status.Code(err) != codes.NotFound {
					t.Errorf("read of a corrupt shard: %v, want DataLoss or NotFound", err)
				}
				if n := <-got; n >= len(data) {
					t.Errorf("a download carried %d bytes, the whole corrupt shard", n)
				}
			}
			if hc := health(t, h); hc.GetCorruptedShardsDetected() != 1 || hc.GetQuarantinedShards() != 1 {
				t.Fatalf("counters after %d reads: corrupted %d, quarantined %d; want 1 each", readers,
					hc.GetCorruptedShardsDetected(), hc.GetQuarantinedShards())
			}
		})
	}
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// withoutMessage returns a copy of resp without its message, which is the
// only field a retry's response may differ in.
func withoutMessage(resp *pb.ProcessChunkResponse) *pb.ProcessChunkResponse {
	c := proto.Clone(resp).(*pb.ProcessChunkResponse)
	c.Message = ""
	return c
}

func TestProcessChunk_IdempotentRetry(t *testing.T) {
	enc := &fakeEncoder{}
	h := newHarness(t, enc, Config{})
	ctx := context.Background()
	data := []byte("the chunk's input bytes")
	req := &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 7, ChunkData: data}
	first, err := h.client.ProcessChunk(ctx, req)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("same bytes and settings", func(t *testing.T) {
		again, err := h.client.ProcessChunk(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := enc.calls.Load(); got != 1 {
			t.Fatalf("encoder called %d times, want 1", got)
		}
		if !proto.Equal(withoutMessage(again), withoutMessage(first)) {
			t.Fatalf("retry response differs:\n%v\nfirst:\n%v", again, first)
		}
		if !strings.Contains(again.GetMessage(), "already stored") {
			t.Fatalf("message %q does not say the chunk was already stored", again.GetMessage())
		}
	})

	t.Run("same bytes uploaded", func(t *testing.T) {
		up, err := uploadChunk(t, h, &pb.UploadHeader{VideoId: "v", ChunkIndex: 7}, data, 4)
		if err != nil {
			t.Fatal(err)
		}
		if got := enc.calls.Load(); got != 1 {
			t.Fatalf("encoder called %d times, want 1", got)
		}
		if !proto.Equal(withoutMessage(up), withoutMessage(first)) {
			t.Fatalf("upload retry response differs:\n%v\nfirst:\n%v", up, first)
		}
		assertTempDirEmpty(t, h)
	})

	t.Run("same size, different bytes, uploaded", func(t *testing.T) {
		other := []byte(strings.ToUpper(string(data)))
		up, err := uploadChunk(t, h, &pb.UploadHeader{VideoId: "v", ChunkIndex: 7}, other, 5)
		if err != nil {
			t.Fatal(err)
		}
		if got := enc.calls.Load(); got != 2 {
			t.Fatalf("encoder called %d times, want 2", got)
		}
		if up.GetChecksumSha256() == first.GetChecksumSha256() {
			t.Fatal("different input kept the old shard")
		}
		got, err := getShard(h, "v", 7)
		if err != nil || string(got.GetShardData()) != string(other) {
			t.Fatalf("GetShard after replace: %q, %v", got.GetShardData(), err)
		}
		assertTempDirEmpty(t, h)
	})

	t.Run("different bytes", func(t *testing.T) {
		calls := enc.calls.Load()
		resp, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 7, ChunkData: []byte("new bytes")})
		if err != nil {
			t.Fatal(err)
		}
		if enc.calls.Load() != calls+1 || strings.Contains(resp.GetMessage(), "already") {
			t.Fatalf("not encoded again: %v", resp)
		}
		got, err := getShard(h, "v", 7)
		if err != nil || string(got.GetShardData()) != "new bytes" {
			t.Fatalf("GetShard after replace: %q, %v", got.GetShardData(), err)
		}
	})

	t.Run("different settings", func(t *testing.T) {
		calls := enc.calls.Load()
		crf := int32(30)
		withCRF := &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 7, ChunkData: []byte("new bytes"), Encoding: &pb.EncodingOptions{Crf: &crf}}
		resp, err := h.client.ProcessChunk(ctx, withCRF)
		if err != nil {
			t.Fatal(err)
		}
		if enc.calls.Load() != calls+1 || resp.GetMetadata().GetEncoderSettings()["crf"] != "30" {
			t.Fatalf("not encoded again with the new settings: %v", resp)
		}
		// And now that is what a retry with those settings gets.
		again, err := h.client.ProcessChunk(ctx, withCRF)
		if err != nil || enc.calls.Load() != calls+1 || !proto.Equal(withoutMessage(again), withoutMessage(resp)) {
			t.Fatalf("retry with the new settings: %v, %v (calls %d)", again, err, enc.calls.Load())
		}
	})
}

// A retry whose stored shard has gone bad is encoded again (and the bad
// shard counted and quarantined) rather than answered with it.
func TestProcessChunk_RetryHealsCorruptShard(t *testing.T) {
	enc := &fakeEncoder{}
	h := newHarness(t, enc, Config{})
	ctx := context.Background()
	req := &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("0123456789")}
	first, err := h.client.ProcessChunk(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	flipShardByte(t, first.GetShardLocation())
	again, err := h.client.ProcessChunk(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if enc.calls.Load() != 2 || strings.Contains(again.GetMessage(), "already") {
		t.Fatalf("a corrupt stored shard was returned for a retry: %v", again)
	}
	if got := health(t, h); got.GetCorruptedShardsDetected() != 1 || got.GetQuarantinedShards() != 1 {
		t.Fatalf("counters: %v", got)
	}
	got, err := getShard(h, "v", 0)
	if err != nil || string(got.GetShardData()) != "0123456789" {
		t.Fatalf("GetShard after the healing retry: %v", err)
	}
}

// plainEncoder hides fakeEncoder's optional interfaces: an encoder that
// cannot tell its settings before encoding, and cannot trim.
type plainEncoder struct{ f *fakeEncoder }

func (p plainEncoder) Name() string                    { return p.f.Name() }
func (p plainEncoder) Check(ctx context.Context) error { return nil }
func (p plainEncoder) Encode(ctx context.Context, in io.Reader, out encode.Output, o encode.Options) (encode.Result, error) {
	return p.f.Encode(ctx, in, out, o)
}

// Without SettingsResolver a retry still gets the stored result, after an
// encode whose output is discarded.
func TestProcessChunk_IdempotentWithoutSettingsResolver(t *testing.T) {
	enc := &fakeEncoder{}
	h := newHarness(t, plainEncoder{enc}, Config{})
	ctx := context.Background()
	req := &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("abc")}
	first, err := h.client.ProcessChunk(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.client.ProcessChunk(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(withoutMessage(again), withoutMessage(first)) || !strings.Contains(again.GetMessage(), "already stored") {
		t.Fatalf("retry response %v, first %v", again, first)
	}
	if enc.calls.Load() != 2 {
		t.Fatalf("encoder called %d times, want 2 (it cannot be skipped without settings)", enc.calls.Load())
	}
}

func assertTempDirEmpty(t *testing.T, h *harness) {
	t.Helper()
	entries, err := os.ReadDir(h.store.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("TempDir holds %d entries after the request", len(entries))
	}
}

// The background scrubber finds a corrupted shard on its own: it is
// quarantined, unlisted, and counted.
func TestRunScrubber(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{})
	ctx := context.Background()
	var locs []string
	for i := range 3 {
		resp, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: int32(i), ChunkData: []byte("bytes of chunk " + string(rune('a'+i)))})
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, resp.GetShardLocation())
	}
	flipShardByte(t, locs[1])
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		h.srv.RunScrubber(sctx, 10*time.Millisecond, storage.ScrubOptions{BytesPerSecond: 1 << 20})
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for listed(t, h, "v", 1) {
		if time.Now().After(deadline) {
			t.Fatal("the scrubber did not quarantine the corrupted shard")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunScrubber did not return when its context ended")
	}
	if got := health(t, h); got.GetCorruptedShardsDetected() != 1 || got.GetQuarantinedShards() != 1 {
		t.Fatalf("counters: %v", got)
	}
	if !listed(t, h, "v", 0) || !listed(t, h, "v", 2) {
		t.Fatal("the scrubber took intact chunks too")
	}
	if _, err := getShard(h, "v", 1); status.Code(err) != codes.NotFound {
		t.Fatalf("GetShard of the scrubbed chunk: %v, want NotFound", err)
	}
}

// Uploads larger than the prefix checksum: a retry is recognised after
// spooling; one that differs only after the first MiB is spooled, found
// different, and encoded from the spool.
func TestUploadChunk_RetryAndSamePrefixDifferentTail(t *testing.T) {
	enc := &fakeEncoder{}
	h := newHarness(t, enc, Config{})
	data := make([]byte, 3<<20/2)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	first, err := uploadChunk(t, h, &pb.UploadHeader{VideoId: "big", ChunkIndex: 0}, data, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	again, err := uploadChunk(t, h, &pb.UploadHeader{VideoId: "big", ChunkIndex: 0}, data, 100<<10)
	if err != nil {
		t.Fatal(err)
	}
	if enc.calls.Load() != 1 || !proto.Equal(withoutMessage(again), withoutMessage(first)) || !strings.Contains(again.GetMessage(), "already stored") {
		t.Fatalf("upload retry: calls %d, response %v; first %v", enc.calls.Load(), again, first)
	}
	assertTempDirEmpty(t, h)

	tail := append([]byte(nil), data...)
	tail[len(tail)-1] ^= 1
	changed, err := uploadChunk(t, h, &pb.UploadHeader{VideoId: "big", ChunkIndex: 0}, tail, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	if enc.calls.Load() != 2 || changed.GetChecksumSha256() != sha(tail) {
		t.Fatalf("changed tail: calls %d, checksum %s, want the new bytes' %s", enc.calls.Load(), changed.GetChecksumSha256(), sha(tail))
	}
	got, err := downloadAll(h, "big", 0)
	if err != nil || sha(got) != sha(tail) {
		t.Fatalf("DownloadShard after the replace: %v", err)
	}
	assertTempDirEmpty(t, h)

	// A short upload of the same announced size still fails as before.
	stream, err := h.client.UploadChunk(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: &pb.UploadHeader{VideoId: "big", ChunkIndex: 0, TotalSize: int64(len(tail))}}})
	stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: tail[:1000]}})
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("short upload: %v, want InvalidArgument", err)
	}
	assertTempDirEmpty(t, h)
}
