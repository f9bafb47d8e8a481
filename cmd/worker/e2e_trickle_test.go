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

	pb "github.com/videoshard/videoshard/proto"
)

// A unary ProcessChunk whose message trickles in, a byte every 50 ms, gives
// its place back once its connection has brought less than 1 MiB in
// limits.upload_idle_timeout, not after limits.upload_timeout: two such
// clients would otherwise deny every unary call for ten minutes at a time.
// gRPC's client sends whole messages, so the trickler speaks raw HTTP/2.
func TestE2EUnaryTrickleLosesItsPlace(t *testing.T) {
	w := startWorker(t, "", `encoder: simulated
limits: {max_concurrent_tasks: 1, max_unary_chunks: 1, upload_timeout: 10m, upload_idle_timeout: 1s}
`)
	ended := trickleUnary(t, w.Addr)
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
}

// trickleUnary opens a unary ProcessChunk on a connection of its own and
// sends its message, announced as 1 MiB, a byte every 50 ms, until the
// worker ends the stream; the channel is closed then.
func trickleUnary(t *testing.T, addr string) <-chan struct{} {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var mu sync.Mutex // the framer's writes
	fr := http2.NewFramer(c, c)
	write := func(f func() error) error {
		mu.Lock()
		defer mu.Unlock()
		return f()
	}
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", addr},
		{":path", pb.VideoProcessingService_ProcessChunk_FullMethodName}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := write(func() error {
		if err := fr.WriteSettings(); err != nil {
			return err
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			return err
		}
		return fr.WriteData(1, false, []byte{0, 0, 0x10, 0, 0}) // uncompressed, 1 MiB
	}); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { // reads until the stream ends: a reset, or trailers
		defer close(ended)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
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
				if write(func() error { return fr.WriteData(1, false, []byte{'x'}) }) != nil {
					return
				}
			}
		}
	}()
	return ended
}
