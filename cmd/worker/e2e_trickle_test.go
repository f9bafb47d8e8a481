package main

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

// A unary ProcessChunk whose message trickles in, a byte every 50 ms, gives
// its place back once its connection has brought less than 1 MiB of
// message in limits.upload_idle_timeout, not after limits.upload_timeout:
// two such clients would otherwise deny every unary call for ten minutes
// at a time. Frames that carry no message do not count, however many
// bytes they bring: padding, window updates. gRPC's client sends whole
// messages, so the trickler speaks raw HTTP/2.
func TestE2EUnaryTrickleLosesItsPlace(t *testing.T) {
	for _, tt := range []struct {
		name string
		fill filler
	}{
		{"bytes alone", nil},
		{"padded with 1.2 MiB/s of padding-only frames", padding(60 << 10)},
		{"padded with 1.2 MiB/s of window updates", windowUpdates(60 << 10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := startWorker(t, "", `encoder: simulated
limits: {max_concurrent_tasks: 1, max_unary_chunks: 1, upload_timeout: 10m, upload_idle_timeout: 1s}
`)
			ended := trickleUnary(t, w.Addr, tt.fill)
			select {
			case <-ended:
			case <-time.After(30 * time.Second):
				t.Fatal("the trickling call still holds its place after 30 s")
			}
			if _, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{VideoId: "v", ChunkData: []byte("chunk")}); err != nil {
				t.Fatalf("an honest call once the trickling one is gone: %v", err)
			}
			if !strings.Contains(w.Logs.String(), "limits.upload_idle_timeout") {
				t.Errorf("the worker did not log why it cancelled the trickling call:\n%s", w.Logs)
			}
		})
	}
}

// A unary ProcessChunk that comes while a trickling one holds the only
// place takes that place, once the trickler has had time to show its pace
// (2 s), long before limits.upload_idle_timeout: a trickler that opens a
// new call as soon as the old one is cancelled would otherwise win every
// freed place from honest clients, who back off.
func TestE2EUnaryTrickleGivesWay(t *testing.T) {
	w := startWorker(t, "", `encoder: simulated
limits: {max_concurrent_tasks: 1, max_unary_chunks: 1, upload_timeout: 10m, upload_idle_timeout: 30s}
`)
	ended := trickleUnary(t, w.Addr, nil)
	honest := func() error {
		_, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{VideoId: "v", ChunkData: []byte("chunk")})
		return err
	}
	time.Sleep(500 * time.Millisecond)
	if err := honest(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a call before the trickler is judged: %v, want ResourceExhausted", err)
	}
	time.Sleep(2 * time.Second)
	if err := honest(); err != nil {
		t.Fatalf("a call beside a trickler judged slow: %v, want it served", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the trickling call still goes on")
	}
	if !strings.Contains(w.Logs.String(), "while another call waited for its place") {
		t.Errorf("the worker did not log why it cancelled the trickling call:\n%s", w.Logs)
	}
}

// A filler sends frames that carry no message on stream 1 or the
// connection, after each byte of the message, through write; send waits
// for the flow-control window a DATA frame of n bytes needs, and takes it.
type filler func(fr *http2.Framer, write func(func() error) error, send func(n int) bool) error

// padding sends about bytes of DATA frames on stream 1 that are all padding.
func padding(bytes int) filler {
	return func(fr *http2.Framer, write func(func() error) error, send func(n int) bool) error {
		pad := make([]byte, 255)
		for sent := 0; sent < bytes; sent += 1 + len(pad) {
			if !send(1 + len(pad)) {
				return nil
			}
			if err := write(func() error { return fr.WriteDataPadded(1, false, nil, pad) }); err != nil {
				return err
			}
		}
		return nil
	}
}

// windowUpdates sends about bytes of WINDOW_UPDATE frames (13 bytes each).
func windowUpdates(bytes int) filler {
	return func(fr *http2.Framer, write func(func() error) error, _ func(int) bool) error {
		return write(func() error {
			for sent := 0; sent < bytes; sent += 13 {
				if err := fr.WriteWindowUpdate(0, 1); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// trickleUnary opens a unary ProcessChunk on a connection of its own and
// sends its message, announced as 1 MiB, a byte every 50 ms, each followed
// by what fill sends (if not nil), until the worker ends the stream; the
// channel is closed then. It keeps to the worker's flow-control windows.
func trickleUnary(t *testing.T, addr string, fill filler) <-chan struct{} {
	t.Helper()
	fr, write := dialRawH2(t, addr)
	if err := write(func() error { return openUnary(fr, 1) }); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	// The windows the worker gives, stream 1's and the connection's.
	var flow sync.Mutex
	moved := sync.NewCond(&flow)
	streamWin, connWin := int64(65535-5), int64(65535-5) // less the message prefix sent
	over := false
	send := func(n int) bool {
		flow.Lock()
		defer flow.Unlock()
		for !over && (streamWin < int64(n) || connWin < int64(n)) {
			moved.Wait()
		}
		streamWin -= int64(n)
		connWin -= int64(n)
		return !over
	}
	go func() { // reads until the stream ends: a reset, or trailers
		defer close(ended)
		defer func() {
			flow.Lock()
			over = true
			moved.Broadcast()
			flow.Unlock()
		}()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.WindowUpdateFrame:
				flow.Lock()
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else if f.StreamID == 1 {
					streamWin += int64(f.Increment)
				}
				moved.Broadcast()
				flow.Unlock()
			case *http2.SettingsFrame:
				if !f.IsAck() {
					if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
						flow.Lock()
						streamWin += int64(v) - 65535
						moved.Broadcast()
						flow.Unlock()
					}
					_ = write(fr.WriteSettingsAck)
				}
			case *http2.RSTStreamFrame:
				return
			case *http2.HeadersFrame:
				if f.StreamEnded() {
					return
				}
			case *http2.GoAwayFrame:
				return
			}
		}
	}()
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ended:
				return
			case <-tick.C:
				if !send(1) || write(func() error { return fr.WriteData(1, false, []byte{'x'}) }) != nil {
					return
				}
				if fill != nil && fill(fr, write, send) != nil {
					return
				}
			}
		}
	}()
	return ended
}

// dialRawH2 opens a connection of its own to addr and sends the client
// preface and SETTINGS; write serialises the framer's writes.
func dialRawH2(t *testing.T, addr string) (fr *http2.Framer, write func(func() error) error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var mu sync.Mutex
	fr = http2.NewFramer(c, c)
	write = func(f func() error) error {
		mu.Lock()
		defer mu.Unlock()
		return f()
	}
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := write(func() error { return fr.WriteSettings() }); err != nil {
		t.Fatal(err)
	}
	return fr, write
}

// processChunkHeaders is the HPACK block of a ProcessChunk call's headers.
var processChunkHeaders = func() []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "worker"},
		{":path", pb.VideoProcessingService_ProcessChunk_FullMethodName}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			panic(err)
		}
	}
	return hb.Bytes()
}()

// openUnary opens ProcessChunk call id and sends its message's prefix,
// announcing 1 MiB, and nothing of the message.
func openUnary(fr *http2.Framer, id uint32) error {
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: processChunkHeaders, EndHeaders: true}); err != nil {
		return err
	}
	return fr.WriteData(id, false, []byte{0, 0, 0x10, 0, 0}) // uncompressed, 1 MiB
}

// TestE2EUnaryChurnGivesWay: a trickler that opens a new call every 2 ms
// on one connection, each sending nothing but its message's prefix, does
// not keep the only unary place by taking it from its own calls (each new
// one the first to come once the last had been judged): once one of its
// calls has lost the place for its pace, its client is suspect, and an
// honest call takes the place of a suspect's call at once. (The honest
// client shares the trickler's address here, 127.0.0.1, so its own call is
// a suspect's too, and now and then loses the place while its message
// comes.)
func TestE2EUnaryChurnGivesWay(t *testing.T) {
	w := startWorker(t, "", `encoder: simulated
limits: {max_concurrent_tasks: 1, max_unary_chunks: 1, upload_timeout: 10m, upload_idle_timeout: 30s}
`)
	fr, write := dialRawH2(t, w.Addr)
	go func() { // settings acknowledged, the rest dropped
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				_ = write(fr.WriteSettingsAck)
			}
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for id := uint32(1); ; id += 2 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if write(func() error { return openUnary(fr, id) }) != nil {
				return
			}
		}
	}()
	time.Sleep(2500 * time.Millisecond) // its first call judged: from here on, every place it holds can be taken
	served, calls := 0, 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); calls++ {
		if _, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{VideoId: "v", ChunkData: []byte("chunk")}); err == nil {
			served++
		}
		time.Sleep(100 * time.Millisecond)
	}
	if served*2 < calls {
		t.Errorf("%d of %d honest calls served beside a churning trickler, want half or more", served, calls)
	}
}
