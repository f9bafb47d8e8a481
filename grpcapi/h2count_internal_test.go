package grpcapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/videoshard/videoshard/internal/testpki"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// pipeConn is a net.Conn whose Read hands out src at most piece bytes at a
// time and whose Write discards.
type pipeConn struct {
	net.Conn
	src   *bytes.Buffer
	piece int
}

func (c *pipeConn) Read(b []byte) (int, error)  { return c.src.Read(b[:min(len(b), c.piece)]) }
func (c *pipeConn) Write(b []byte) (int, error) { return len(b), nil }

// TestH2ConnCountsMessageBytes: only the data of DATA frames on streams the
// client opened and neither side has ended is counted, however the bytes
// are cut into reads; padding, control frames and frames of other streams
// are not.
func TestH2ConnCountsMessageBytes(t *testing.T) {
	type step struct {
		client bool
		frames func(fr *http2.Framer) error
	}
	headers := func(id uint32, end bool) func(*http2.Framer) error {
		return func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x82}, EndHeaders: true, EndStream: end})
		}
	}
	data := func(id uint32, n int, end bool) func(*http2.Framer) error {
		return func(fr *http2.Framer) error { return fr.WriteData(id, end, make([]byte, n)) }
	}
	padded := func(id uint32, n, pad int) func(*http2.Framer) error {
		return func(fr *http2.Framer) error { return fr.WriteDataPadded(id, false, make([]byte, n), make([]byte, pad)) }
	}
	reset := func(id uint32) func(*http2.Framer) error {
		return func(fr *http2.Framer) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) }
	}
	noise := func(fr *http2.Framer) error {
		for range 50 {
			if err := fr.WriteWindowUpdate(0, 1); err != nil {
				return err
			}
			if err := fr.WritePing(false, [8]byte{}); err != nil {
				return err
			}
		}
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	}
	steps := []step{
		{true, noise},
		{true, headers(1, false)},
		{true, data(1, 5, false)},   // 5
		{true, padded(1, 3, 200)},   // 3, not its 201 bytes of padding
		{true, padded(1, 0, 255)},   // padding only
		{true, data(3, 100, false)}, // a stream never opened
		{true, headers(5, false)},
		{true, data(5, 7, true)},   // 7, and the stream ends
		{true, data(5, 50, false)}, // after its end
		{true, reset(1)},
		{true, data(1, 40, false)}, // after the client's reset
		{true, headers(7, false)},
		{true, data(7, 10, false)}, // 10
		{false, reset(7)},          // the server resets it
		{true, data(7, 20, false)}, //
		{true, headers(9, false)},
		{true, padded(9, 1000, 17)}, // 1000
		{false, headers(9, true)},   // the server's trailers end it
		{true, data(9, 30, false)},  //
		{true, headers(11, true)},   // a call with no message: never live
		{true, data(11, 60, false)}, //
		{true, noise},
	}
	const want = 5 + 3 + 7 + 10 + 1000
	for _, piece := range []int{1, 2, 5, 9, 10, 4096} {
		t.Run(fmt.Sprintf("reads of %d", piece), func(t *testing.T) {
			src := &bytes.Buffer{}
			p := &connProgress{}
			h := newH2Conn(&pipeConn{src: src, piece: piece}, p)
			src.WriteString(clientPreface)
			var out bytes.Buffer
			for i, s := range steps {
				var frames bytes.Buffer
				if err := s.frames(http2.NewFramer(&frames, nil)); err != nil {
					t.Fatal(err)
				}
				if !s.client {
					out.Reset()
					out.Write(frames.Bytes())
					for out.Len() > 0 { // the server's frames, in writes of piece bytes
						if _, err := h.Write(out.Next(piece)); err != nil {
							t.Fatal(err)
						}
					}
					continue
				}
				src.Write(frames.Bytes())
				buf := make([]byte, 8192)
				for src.Len() > 0 {
					if _, err := h.Read(buf); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
				}
			}
			if got := p.read.Load(); got != want {
				t.Errorf("counted %d message bytes, want %d", got, want)
			}
		})
	}
}

// TestH2ConnOverTheWire: a real client's unary ProcessChunk is counted
// whole, as the worker serves (GRPCOptions, Listener), plaintext or TLS.
func TestH2ConnOverTheWire(t *testing.T) {
	pki := testpki.Generate(t)
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		server, dial credentials.TransportCredentials
	}{
		{"plaintext", nil, insecure.NewCredentials()},
		{"TLS", credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}}), credentials.NewTLS(pki.ClientTLS(t, false))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store, err := storage.Open(storage.Options{Root: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			srv := NewServer(store, &fakeEncoder{}, Config{})
			var opts []Option
			if tt.server != nil {
				opts = append(opts, WithCredentials(tt.server))
			}
			gs := grpc.NewServer(srv.GRPCOptions(opts...)...)
			srv.Register(gs)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go gs.Serve(srv.Listener(lis))
			t.Cleanup(gs.Stop)
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(tt.dial))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			chunk := bytes.Repeat([]byte("chunk"), 100<<10)
			if _, err := pb.NewVideoProcessingServiceClient(conn).ProcessChunk(context.Background(),
				&pb.ProcessChunkRequest{VideoId: "v", ChunkData: chunk}); err != nil {
				t.Fatal(err)
			}
			srv.connBytes.mu.Lock()
			defer srv.connBytes.mu.Unlock()
			if len(srv.connBytes.conns) != 1 {
				t.Fatalf("%d connections known, want 1", len(srv.connBytes.conns))
			}
			for _, p := range srv.connBytes.conns {
				// The message: its 5-byte prefix, and its fields around the chunk.
				if got := p.read.Load(); got < int64(len(chunk)) || got > int64(len(chunk))+64 {
					t.Errorf("counted %d message bytes for a call of a %d-byte chunk", got, len(chunk))
				}
			}
		})
	}
}
