package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
)

// Whatever happens to a call, in whatever order, its admission is given
// back exactly once, and a handler never starts on a call that has ended.
func TestAdmissionLifecycle(t *testing.T) {
	tests := []struct {
		name      string
		steps     string // s: start, f: finish, d: drop (stream ended, or message deadline)
		wantStart bool   // what the first start returned
	}{
		{"handler runs and returns", "sf", true},
		{"stream ends before the handler", "d", false},
		{"stream ends while the handler runs", "sdf", true},
		{"stream ended, then a late handler", "ds", false},
		{"finish twice", "sff", true},
		{"dropped twice", "dd", false},
		{"dropped after the handler returned", "sfd", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &gate{what: "calls", key: "k", max: 1}
			if err := g.enter(); err != nil {
				t.Fatal(err)
			}
			a := &admission{gate: g}
			started, sawStart := false, false
			for _, step := range tt.steps {
				switch step {
				case 's':
					ok := a.start()
					if !sawStart {
						started, sawStart = ok, true
					}
				case 'f':
					a.finish()
				case 'd':
					a.drop()
				}
			}
			if sawStart && started != tt.wantStart {
				t.Fatalf("start = %v, want %v", started, tt.wantStart)
			}
			if n := g.n.Load(); n != 0 {
				t.Fatalf("%d calls still counted after %q", n, tt.steps)
			}
		})
	}
}

func TestGateRefusalNamesTheLimit(t *testing.T) {
	g := &gate{what: "uploads", key: "limits.max_uploads", max: 2}
	for range 2 {
		if err := g.enter(); err != nil {
			t.Fatal(err)
		}
	}
	err := toStatus(g.enter())
	if status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(err.Error(), "2 uploads in flight, the limit (limits.max_uploads) is 2") {
		t.Fatalf("refusal: %v", err)
	}
	if g.n.Load() != 2 {
		t.Fatalf("a refused call is counted: %d", g.n.Load())
	}
}

// waitUntil polls cond (the server's counters have no events to wait on).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// An upload whose header finds every slot and queue place taken is refused
// before its data; one that got in, once received whole, waits for a slot
// even if the queue has filled meanwhile, rather than be refused after its
// client has sent it all.
func TestUploadQueueing(t *testing.T) {
	enc := &fakeEncoder{started: make(chan struct{}, 10), block: make(chan struct{})}
	h := newHarness(t, enc, Config{MaxConcurrentTasks: 1, MaxQueuedTasks: 1, MaxUnaryChunks: 2, MaxUploads: 4})
	ctx := context.Background()
	results := make(chan error, 3)
	unary := func(i int32) {
		_, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: i, ChunkData: []byte("data")})
		results <- err
	}
	go unary(0)
	<-enc.started // the only slot is taken

	// An upload that gets in: its header now, its data later.
	late, err := h.client.UploadChunk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("the late upload's bytes")
	if err := late.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: &pb.UploadHeader{
		VideoId: "v", ChunkIndex: 1, TotalSize: int64(len(data))}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the upload's spool", func() bool { return spools(t, h) == 1 })

	go unary(2) // takes the only queue place
	waitUntil(t, "a queued unary call", func() bool { return h.srv.queued.Load() == 1 })

	// Every slot and queue place is taken: a new upload is refused at its header.
	_, err = uploadChunk(t, h, &pb.UploadHeader{VideoId: "v", ChunkIndex: 3}, []byte("refused"), 4)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "limits.max_queued_tasks") {
		t.Fatalf("an upload finding the queue full: %v, want ResourceExhausted naming limits.max_queued_tasks", err)
	}

	// The one that got in sends its data: it waits beyond the queue's bound.
	if err := late.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: data}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := late.CloseAndRecv()
		results <- err
	}()
	waitUntil(t, "the received upload waiting", func() bool { return h.srv.queued.Load() == 2 })
	close(enc.block)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	assertTempDirEmpty(t, h)
}

// spools counts the uploads spooled in the store's TempDir (which holds
// pending shards too).
func spools(t *testing.T, h *harness) int {
	t.Helper()
	entries, err := os.ReadDir(h.store.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "upload-") {
			n++
		}
	}
	return n
}

// An upload that cannot succeed is refused at its header: its client never
// sends the data (and does not close its side) before it has the answer.
func TestUploadRefusedAtItsHeader(t *testing.T) {
	sim, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		enc    encode.Encoder
		header *pb.UploadHeader
		want   codes.Code
	}{
		{"codec outside the allowlist", sim,
			&pb.UploadHeader{VideoId: "v", TotalSize: 10, Encoding: &pb.EncodingOptions{VideoCodec: "rawvideo"}}, codes.InvalidArgument},
		{"a trim the encoder cannot do", plainEncoder{&fakeEncoder{}},
			&pb.UploadHeader{VideoId: "v", TotalSize: 10, Trim: &pb.FrameTrim{StartFrame: 1, FrameCount: 1}}, codes.InvalidArgument},
		{"larger than limits.max_chunk_bytes", sim, &pb.UploadHeader{VideoId: "v", TotalSize: 1 << 40}, codes.ResourceExhausted},
		{"a bad video id", sim, &pb.UploadHeader{VideoId: "../v", TotalSize: 10}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.enc, Config{MaxChunkBytes: 1 << 20})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := h.client.UploadChunk(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: tt.header}}); err != nil {
				t.Fatal(err)
			}
			var resp pb.ProcessChunkResponse
			if err := stream.RecvMsg(&resp); status.Code(err) != tt.want {
				t.Fatalf("answer to the header alone: %v, want %v", err, tt.want)
			}
			if n := spools(t, h); n != 0 {
				t.Fatalf("%d spool files left", n)
			}
		})
	}
}

// TestSlowUploadGivesWay: with every upload place taken by a client that
// trickles its data (a byte now and then, and back as soon as it is
// dropped), an upload that comes to a full gate takes the place of the
// one furthest behind the pace, at once: the trickler's upload ends
// saying why. An upload keeping the pace is not given up for another.
func TestSlowUploadGivesWay(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{MaxUploads: 1, UploadIdleTimeout: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	header := func(i int32) *pb.UploadChunkRequest {
		return &pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: &pb.UploadHeader{VideoId: "v", ChunkIndex: i, TotalSize: 4}}}
	}
	data := func(b string) *pb.UploadChunkRequest {
		return &pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: []byte(b)}}
	}
	slow, err := h.client.UploadChunk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Send(header(0)); err != nil {
		t.Fatal(err)
	}
	if err := slow.Send(data("x")); err != nil {
		t.Fatal(err)
	}
	// Before behindAfter, the place is the trickler's.
	time.Sleep(200 * time.Millisecond)
	early, err := h.client.UploadChunk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = early.Send(header(1))
	if _, err := early.CloseAndRecv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("an upload before the trickler is judged: %v, want ResourceExhausted", err)
	}
	time.Sleep(behindAfter)
	honest, err := h.client.UploadChunk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := honest.Send(header(2)); err != nil {
		t.Fatal(err)
	}
	if err := honest.Send(data("abcd")); err != nil {
		t.Fatal(err)
	}
	if resp, err := honest.CloseAndRecv(); err != nil || !resp.GetSuccess() {
		t.Fatalf("an upload beside a trickler: %v %v, want it served", resp, err)
	}
	if _, err := slow.CloseAndRecv(); status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "another upload waited") {
		t.Errorf("the trickler's upload: %v, want DeadlineExceeded saying another upload waited", err)
	}
}

// TestReceiverBehind: an upload is behind once its window has run
// behindAfter and it has brought less than half of what the pace asks for
// by then.
func TestReceiverBehind(t *testing.T) {
	start := time.Now()
	tests := []struct {
		elapsed time.Duration
		bytes   int
		behind  bool
	}{
		{time.Second, 0, false}, // too soon to judge
		{3 * time.Second, 1, true},
		{3 * time.Second, uploadProgressBytes / 10, false}, // at the pace
		{3 * time.Second, uploadProgressBytes / 25, true},  // under half of it
		{30 * time.Second, uploadProgressBytes / 2, false}, // half: not under it
	}
	for _, tt := range tests {
		r := &receiver{idle: 30 * time.Second, windowStart: start, windowBytes: tt.bytes}
		if _, behind := r.behind(start.Add(tt.elapsed)); behind != tt.behind {
			t.Errorf("%d bytes in %v: behind %v, want %v", tt.bytes, tt.elapsed, behind, tt.behind)
		}
	}
}

// TestUnaryPaceBehind: a unary call waiting for its message is behind once
// it has waited behindAfter and its connection has brought less than half
// the pace, for each of the connection's calls waiting.
func TestUnaryPaceBehind(t *testing.T) {
	start := time.Now()
	tests := []struct {
		elapsed time.Duration
		bytes   int64
		waiting int64
		behind  bool
	}{
		{time.Second, 0, 1, false}, // too soon to judge
		{3 * time.Second, 1, 1, true},
		{3 * time.Second, uploadProgressBytes / 10, 1, false}, // at the pace
		{3 * time.Second, uploadProgressBytes / 10, 4, true},  // a quarter of it for each of four
		{3 * time.Second, uploadProgressBytes / 25, 1, true},  // under half of it
		{30 * time.Second, uploadProgressBytes / 2, 1, false}, // half: not under it
	}
	for _, tt := range tests {
		p := &connProgress{}
		p.read.Store(100 + tt.bytes)
		p.unaryWaiting.Store(tt.waiting)
		u := &unaryPace{conn: p, start: start, startBytes: 100, idle: 30 * time.Second}
		if _, behind := u.behind(start.Add(tt.elapsed)); behind != tt.behind {
			t.Errorf("%d bytes in %v for %d calls: behind %v, want %v", tt.bytes, tt.elapsed, tt.waiting, behind, tt.behind)
		}
	}
}

// TestGateSuspects: a suspect stays one for suspectFor, and the marks are
// bounded, the oldest going first.
func TestGateSuspects(t *testing.T) {
	g := &gate{suspectFor: time.Second}
	t0 := time.Now()
	g.suspect("10.0.0.1", t0)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.suspectedLocked("10.0.0.1", t0.Add(999*time.Millisecond)) || g.suspectedLocked("10.0.0.2", t0) {
		t.Fatal("a suspect within suspectFor, or another host: wrong verdict")
	}
	if g.suspectedLocked("10.0.0.1", t0.Add(time.Second)) {
		t.Error("still suspect after suspectFor")
	}
	for i := range maxSuspects + 10 {
		g.suspectLocked(fmt.Sprintf("host-%d", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if len(g.suspects) != maxSuspects || g.suspectedLocked("host-0", t0) || !g.suspectedLocked(fmt.Sprintf("host-%d", maxSuspects+9), t0) {
		t.Errorf("%d suspects kept, want the newest %d", len(g.suspects), maxSuspects)
	}
}

// TestReceiverEvictAfterItsEnd: an upload whose stream's end is in cannot
// be evicted (it goes on to encode, its place its own); one evicted fails
// its next message, whichever comes first.
func TestReceiverEvictAfterItsEnd(t *testing.T) {
	newRx := func() *receiver {
		return &receiver{ask: make(chan struct{}, 1), got: make(chan received, 1), evicted: make(chan struct{}), windowStart: time.Now()}
	}
	r, a := newRx(), &admission{}
	r.got <- received{err: io.EOF}
	if _, err := r.next("the end"); err != io.EOF {
		t.Fatalf("next: %v, want EOF", err)
	}
	if r.evict(a) || a.handedOn.Load() {
		t.Error("an upload whose end was in was evicted")
	}
	r, a = newRx(), &admission{}
	if !r.evict(a) || !a.handedOn.Load() {
		t.Fatal("an upload still receiving was not evicted")
	}
	r.got <- received{msg: &pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: []byte("x")}}}
	if _, err := r.next("data"); !errors.Is(err, errUploadTimeout) {
		t.Errorf("next after the eviction: %v, want errUploadTimeout", err)
	}
}
