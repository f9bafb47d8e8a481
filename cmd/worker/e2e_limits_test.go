package main

// End-to-end tests of the worker's admission and upload limits (issue 8,
// items 1 and 2): each reproduces an attack against the real binary.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

// wantStatus fails unless err has code and its message every one of words.
func wantStatus(t *testing.T, what string, err error, code codes.Code, words ...string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code {
		t.Fatalf("%s: %v, want %v", what, err, code)
	}
	for _, w := range words {
		if !strings.Contains(st.Message(), w) {
			t.Fatalf("%s: message %q does not say %q", what, st.Message(), w)
		}
	}
}

// hasRetryHint reports whether err carries a RetryInfo: an overload
// refusal, nothing done, to be tried again.
func hasRetryHint(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok && r.GetRetryDelay().AsDuration() > 0 {
			return true
		}
	}
	return false
}

// tempFiles lists the store's scratch directory.
func tempFiles(t *testing.T, w *worker) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(w.Root, ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// outcomeWithin waits up to d for the call's answer; d only bounds how long
// a worker that never answers (the attack succeeding) keeps the test.
func outcomeWithin(t *testing.T, cs grpc.ClientStream, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- outcome(cs) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("no answer in %v: the call still holds its place", d)
		return nil
	}
}

// Seven uploads that send a header announcing 60 MiB and then nothing used
// to take the only encode slot and the only queue place: every honest call
// was "worker busy" for as long as they liked. Now they hold upload places
// only: the eighth upload place goes to an honest upload, the next stream
// is refused before it sends anything (naming limits.max_uploads), honest
// unary calls are encoded meanwhile, and the idle timeout ends the seven,
// their spool files removed.
func TestE2EUploadSlowlorisHoldsNoEncodeSlot(t *testing.T) {
	w := startWorker(t, "", `encoder: simulated
limits: {max_concurrent_tasks: 1, max_queued_tasks: 1, max_uploads: 8, upload_idle_timeout: 5s, upload_timeout: 1m}
`)
	ctx := ctxT(t)
	attacker := dialRaw(t, w.Addr)
	var held []grpc.ClientStream
	for i := range 7 {
		cs, err := slowloris(ctx, attacker, "slow", int32(i), 60<<20)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, cs)
	}
	// An honest upload on the same connection, so that it reaches the
	// worker after the seven: its header now, its data later.
	data := randomBytes(100_000, 21)
	honest, err := openStream(ctx, attacker, pb.VideoProcessingService_UploadChunk_FullMethodName,
		headerFrame(&pb.UploadHeader{VideoId: "honest", ChunkIndex: 0, TotalSize: int64(len(data))}))
	if err != nil {
		t.Fatal(err)
	}
	// The ninth stream finds every place taken and is refused at once.
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	probe, err := openStream(pctx, attacker, pb.VideoProcessingService_UploadChunk_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "a ninth upload", outcomeWithin(t, probe, 30*time.Second), codes.ResourceExhausted,
		"8 uploads in flight", "limits.max_uploads")

	for i := range 3 {
		if _, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "honest", ChunkIndex: int32(1 + i),
			ChunkData: randomBytes(50_000, uint64(30+i))}); err != nil {
			t.Fatalf("honest unary call %d while seven uploads stall: %v", i, err)
		}
	}
	if err := honest.SendMsg(dataFrame(data)); err != nil {
		t.Fatal(err)
	}
	if err := honest.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := outcome(honest); err != nil {
		t.Fatalf("honest upload beside the stalled ones: %v", err)
	}

	for i, cs := range held {
		wantStatus(t, "stalled upload "+itoa(int32(i)), outcomeWithin(t, cs, time.Minute), codes.DeadlineExceeded,
			"limits.upload_idle_timeout", "after 0 of 62914560 bytes")
	}
	if left := tempFiles(t, w); len(left) != 0 {
		t.Fatalf("spool files left after the stalled uploads ended: %v", left)
	}
}

// Every way of stalling an upload ends with DeadlineExceeded naming the
// limit that ran out, its spool file removed and its place given back.
func TestE2EUploadTimeouts(t *testing.T) {
	w := startWorker(t, "", `encoder: simulated
limits: {max_uploads: 1, upload_idle_timeout: 1s, upload_timeout: 3s}
`)
	ctx := ctxT(t)
	data := randomBytes(20_000, 40)
	header := headerFrame(&pb.UploadHeader{VideoId: "stall", ChunkIndex: 0, TotalSize: int64(len(data))})
	tests := []struct {
		name string
		send func(grpc.ClientStream) error // what the client sends before it stalls
		want []string
	}{
		{"nothing at all", func(grpc.ClientStream) error { return nil },
			[]string{"limits.upload_idle_timeout", "for the header"}},
		{"a header, then nothing", func(cs grpc.ClientStream) error { return cs.SendMsg(header) },
			[]string{"limits.upload_idle_timeout", "after 0 of 20000 bytes", "for data"}},
		{"all its data, but never the end of the stream", func(cs grpc.ClientStream) error {
			if err := cs.SendMsg(header); err != nil {
				return err
			}
			return cs.SendMsg(dataFrame(data))
		}, []string{"limits.upload_idle_timeout", "for the end of the stream (CloseSend)"}},
		{"a byte at a time, never idle", func(cs grpc.ClientStream) error {
			if err := cs.SendMsg(header); err != nil {
				return err
			}
			// A message well inside the idle timeout, but bytes far
			// below a frame in it: not progress.
			go func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					<-tick.C
					if cs.SendMsg(dataFrame(data[i:i+1])) != nil {
						return
					}
				}
			}()
			return nil
		}, []string{"limits.upload_idle_timeout", "less than 1048576 bytes of data in 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := openStream(ctx, dialRaw(t, w.Addr), pb.VideoProcessingService_UploadChunk_FullMethodName)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.send(cs); err != nil {
				t.Fatal(err)
			}
			wantStatus(t, "stalled upload", outcomeWithin(t, cs, 30*time.Second), codes.DeadlineExceeded, tt.want...)
			if left := tempFiles(t, w); len(left) != 0 {
				t.Fatalf("spool files left: %v", left)
			}
			// Its place (the only one) is free again.
			if _, err := upload(ctx, w.Client, &pb.UploadHeader{VideoId: "after", ChunkIndex: 0, TotalSize: int64(len(data))}, data, 4096); err != nil {
				t.Fatalf("an upload after the stalled one: %v", err)
			}
		})
	}
}

// A unary ProcessChunk is admitted when its headers arrive, before gRPC
// reads its message: beyond limits.max_unary_chunks a call is refused
// without a byte of its message read, and a call whose message never comes
// gives its place back once its connection has brought nothing for
// limits.upload_idle_timeout (limits.upload_timeout at the latest).
func TestE2EUnaryRefusedBeforeItsMessage(t *testing.T) {
	w := startWorker(t, "", `encoder: simulated
limits: {max_concurrent_tasks: 1, max_unary_chunks: 2, upload_timeout: 2s, upload_idle_timeout: 1s}
`)
	ctx := ctxT(t)
	conn := dialRaw(t, w.Addr)
	// Two calls that send their headers and never their message.
	var silent []grpc.ClientStream
	for range 2 {
		cs, err := openStream(ctx, conn, pb.VideoProcessingService_ProcessChunk_FullMethodName)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, cs)
	}
	// A third one is refused although it has sent no message either: the
	// worker did not wait for it.
	probe, err := openStream(ctx, conn, pb.VideoProcessingService_ProcessChunk_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "a third unary call", outcomeWithin(t, probe, 30*time.Second), codes.ResourceExhausted,
		"2 unary ProcessChunk calls in flight", "limits.max_unary_chunks")
	_, err = w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkData: []byte("chunk")})
	wantStatus(t, "an honest call meanwhile", err, codes.ResourceExhausted, "limits.max_unary_chunks")
	if !hasRetryHint(err) {
		t.Fatalf("the refusal carries no retry hint: %v", status.Convert(err).Details())
	}

	for i, cs := range silent {
		if err := outcomeWithin(t, cs, 30*time.Second); status.Code(err) != codes.Canceled {
			t.Fatalf("silent call %d: %v, want Canceled after limits.upload_idle_timeout", i, err)
		}
	}
	if _, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkData: []byte("chunk")}); err != nil {
		t.Fatalf("an honest call once the silent ones are gone: %v", err)
	}
	if !strings.Contains(w.Logs.String(), "limits.upload_idle_timeout") {
		t.Errorf("the worker did not log why it cancelled the silent calls:\n%s", w.Logs)
	}
}

// The attack of issue 8: many concurrent 48 MiB unary calls. gRPC used to
// read every one of them before the queue said no; now only
// limits.max_unary_chunks are read, the others refused at their headers.
func TestE2EUnaryFloodReadsOnlyAdmitted(t *testing.T) {
	w := startWorker(t, "", `encoder: simulated
simulated: {delay: 10m}
limits: {max_concurrent_tasks: 1, max_unary_chunks: 2}
`)
	const calls = 8
	msg := mustMarshal(&pb.ProcessChunkRequest{VideoId: "flood", ChunkData: make([]byte, 48<<20)})
	conns := []*grpc.ClientConn{dialRaw(t, w.Addr), dialRaw(t, w.Addr)}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	results := make(chan error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			var resp pb.ProcessChunkResponse
			results <- conns[i%2].Invoke(ctx, pb.VideoProcessingService_ProcessChunk_FullMethodName, msg, &resp,
				grpc.ForceCodecV2(rawCodec{}))
		})
	}
	// The admitted two encode for ten minutes: the refusals come first.
	for range calls - 2 {
		wantStatus(t, "a flooding call", <-results, codes.ResourceExhausted, "limits.max_unary_chunks")
	}
	waitFor(t, func() bool {
		h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{})
		return err == nil && h.GetActiveTasks() == 1
	})
	cancel()
	wg.Wait()
	for range 2 {
		if err := <-results; status.Code(err) != codes.Canceled {
			t.Fatalf("an admitted call, cancelled: %v", err)
		}
	}
}

// grpc.max_concurrent_streams reaches the transport: the worker's HTTP/2
// SETTINGS announce it to every client.
func TestE2EMaxConcurrentStreamsAnnounced(t *testing.T) {
	w := startWorker(t, "", "encoder: simulated\ngrpc: {max_concurrent_streams: 7}\n")
	c, err := net.DialTimeout("tcp", w.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// The client preface and an empty SETTINGS frame.
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	got, err := http2MaxConcurrentStreams(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	if got != 7 {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 7", got)
	}
}

// http2MaxConcurrentStreams reads frames until the server's first SETTINGS
// frame and returns its SETTINGS_MAX_CONCURRENT_STREAMS (0 when absent).
func http2MaxConcurrentStreams(r *bufio.Reader) (uint32, error) {
	const typeSettings, flagAck, maxConcurrentStreams = 0x4, 0x1, 0x3
	for {
		var head [9]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return 0, err
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, err
		}
		if head[3] != typeSettings || head[4]&flagAck != 0 {
			continue
		}
		if n%6 != 0 {
			return 0, errors.New("malformed SETTINGS frame")
		}
		for off := 0; off < n; off += 6 {
			if binary.BigEndian.Uint16(payload[off:]) == maxConcurrentStreams {
				return binary.BigEndian.Uint32(payload[off+2:]), nil
			}
		}
		return 0, nil
	}
}
