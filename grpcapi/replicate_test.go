package grpcapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// tcpWorker is a server on a loopback TCP port, as peers dial it.
type tcpWorker struct {
	*harness
	addr string
}

func newTCPWorker(t *testing.T, cfg Config, opts ...Option) *tcpWorker {
	t.Helper()
	store, err := storage.Open(storage.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := NewServer(store, &fakeEncoder{}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Run(ctx)
	t.Cleanup(cancel)
	gs := grpc.NewServer(srv.GRPCOptions(opts...)...)
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(srv.Listener(lis)) // as the worker serves
	t.Cleanup(gs.Stop)
	addr := lis.Addr().String()
	return &tcpWorker{harness: &harness{srv: srv, store: store, client: dialTest(t, addr)}, addr: addr}
}

// serve serves gs on a new loopback listener and returns its address.
func serve(t *testing.T, gs *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func dialTest(t *testing.T, addr string) pb.VideoProcessingServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewVideoProcessingServiceClient(conn)
}

func replicateReq(src, video string, n int32) *pb.ReplicateShardRequest {
	return &pb.ReplicateShardRequest{SourceWorker: src, VideoId: video, ChunkIndex: n}
}

// storeState is every file under a store's root (but the index, which
// records reads) by path, with a hash of its content.
func storeState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".index" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		state[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func TestReplicateShard(t *testing.T) {
	ctx := context.Background()
	src := newTCPWorker(t, Config{WorkerID: "source"})
	dst := newTCPWorker(t, Config{WorkerID: "target"})
	data := strings.Repeat("shard bytes ", 300_000) // several frames
	put(t, src.harness, "v", 3, data, storage.Metadata{OriginalSize: 9000, WorkerID: "source", Encoder: "fake",
		VideoCodec: "libx264", EncoderSettings: map[string]string{"crf": "23"}, FrameCount: 48, Width: 640, Height: 360,
		DurationSeconds: 2, Quality: &storage.Quality{Frames: 48, PSNRMin: 40, PSNRMean: math.Inf(1), SSIMMin: 0.9, SSIMMean: 1}})

	resp, err := dst.client.ReplicateShard(ctx, replicateReq(src.addr, "v", 3))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAlreadyStored() || !resp.GetSuccess() {
		t.Fatalf("first replication: %v", resp)
	}
	srcMeta, err := src.client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "v"})
	if err != nil {
		t.Fatal(err)
	}
	dstMeta, err := dst.client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "v"})
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(srcMeta.GetChunksMetadata()[0]).(*pb.ChunkMetadata)
	got := dstMeta.GetChunksMetadata()[0]
	if got.GetWorkerId() != "target" || got.GetReplicatedFrom() != src.addr ||
		got.GetShardLocation() != filepath.Join(dst.store.Root(), "v", "chunk_3.shard") {
		t.Fatalf("the copy's own fields: worker %q, from %q, at %q", got.GetWorkerId(), got.GetReplicatedFrom(), got.GetShardLocation())
	}
	want.WorkerId, want.ReplicatedFrom, want.ShardLocation = got.GetWorkerId(), got.GetReplicatedFrom(), got.GetShardLocation()
	if !proto.Equal(got, want) {
		t.Fatalf("the copy's metadata\n%v\nwant the source's\n%v", got, want)
	}
	if !proto.Equal(resp.GetMetadata(), got) {
		t.Fatalf("response metadata %v, stored %v", resp.GetMetadata(), got)
	}
	shard, err := dst.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(3)})
	if err != nil || string(shard.GetShardData()) != data {
		t.Fatalf("the copy's bytes: %v", err)
	}

	// Again: nothing is copied.
	before := storeState(t, dst.store.Root())
	resp, err = dst.client.ReplicateShard(ctx, replicateReq(src.addr, "v", 3))
	if err != nil || !resp.GetAlreadyStored() {
		t.Fatalf("second replication: %v, %v; want already_stored", resp, err)
	}
	if after := storeState(t, dst.store.Root()); !maps.Equal(before, after) {
		t.Fatalf("an already-stored replication changed the store:\n%v\n%v", before, after)
	}

	// A new version at the source replaces the copy.
	put(t, src.harness, "v", 3, "version two", storage.Metadata{Encoder: "fake"})
	resp, err = dst.client.ReplicateShard(ctx, replicateReq(src.addr, "v", 3))
	if err != nil || resp.GetAlreadyStored() {
		t.Fatalf("replication of a new version: %v, %v", resp, err)
	}
	if shard, err := dst.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(3)}); err != nil ||
		string(shard.GetShardData()) != "version two" {
		t.Fatalf("after the new version: %q, %v", shard.GetShardData(), err)
	}
	assertNoTemp(t, dst.store)
}

func assertNoTemp(t *testing.T, s *storage.Store) {
	t.Helper()
	names, err := os.ReadDir(s.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Fatalf("left in TempDir: %v", names)
	}
}

// TestReplicateShard_CopyIsNoEncodeResult: a peer's copy claims the input
// checksum of a chunk the master will send; that chunk, sent, is encoded
// over the copy (whose input checksum is only the peer's word), never
// answered "already stored" with the peer's bytes.
func TestReplicateShard_CopyIsNoEncodeResult(t *testing.T) {
	ctx := context.Background()
	hostile := newTCPWorker(t, Config{WorkerID: "hostile"})
	dst := newTCPWorker(t, Config{WorkerID: "target"})
	input := []byte(strings.Repeat("A", 1000))
	sum := sha256.Sum256(input)
	put(t, hostile.harness, "v", 0, "EVIL SHARD", storage.Metadata{OriginalSize: int64(len(input)), Encoder: "fake",
		EncoderSettings: map[string]string{"codec": "fake"}, InputChecksumSHA256: hex.EncodeToString(sum[:])})
	if _, err := dst.client.ReplicateShard(ctx, replicateReq(hostile.addr, "v", 0)); err != nil {
		t.Fatal(err)
	}
	resp, err := dst.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: input})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(resp.GetMessage(), "already stored") {
		t.Fatalf("the peer's copy was taken for the chunk's encode: %q", resp.GetMessage())
	}
	shard, err := dst.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(0)})
	if err != nil || !bytes.Equal(shard.GetShardData(), input) { // the fake encoder copies
		t.Fatalf("after the encode the worker serves %q, %v; want the encode of the chunk", shard.GetShardData(), err)
	}
}

func TestReplicateShard_Refused(t *testing.T) {
	ctx := context.Background()
	src := newTCPWorker(t, Config{})
	noDNS := func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("no such host") }
	dst := newTCPWorker(t, Config{Peer: PeerConfig{Resolve: noDNS}})
	// A port where nothing listens.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	tests := []struct {
		name string
		req  *pb.ReplicateShardRequest
		want codes.Code
	}{
		{"source lacks the chunk", replicateReq(src.addr, "v", 1), codes.NotFound},
		{"source unreachable", replicateReq(closed, "v", 1), codes.Unavailable},
		{"no name resolves", replicateReq("no-such-host.invalid:50061", "v", 1), codes.Unavailable},
		{"bad video id", replicateReq(src.addr, "../v", 1), codes.InvalidArgument},
		{"bad chunk index", replicateReq(src.addr, "v", -1), codes.InvalidArgument},
		{"no source", replicateReq("", "v", 1), codes.InvalidArgument},
	}
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:080", "127.0.0.1:+80",
		":50061", "[::1]", "a b:1", "1.2.3:80", "[fe80::1%eth0]:1", "host_name:1", "-a:1", "a-.b:1", "a..b:1",
		"[localhost]:1", "127.0.0.1:1:2", strings.Repeat("a.", 127) + "a:1",
		// inet_aton's spellings of 127.0.0.1, which a C resolver would take.
		"127.1:80", "0x7f.1:80", "2130706433:80", "0177.0.0.1:80", "127.0.0.01:80", "localhost.:80"} {
		tests = append(tests, struct {
			name string
			req  *pb.ReplicateShardRequest
			want codes.Code
		}{"address " + addr, replicateReq(addr, "v", 1), codes.InvalidArgument})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dst.client.ReplicateShard(ctx, tt.req)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("ReplicateShard: %v, want %v", err, tt.want)
			}
		})
	}
	assertNoTemp(t, dst.store)
}

// TestReplicateShard_NoPortScan: a port where nothing listens and one
// where another service does (it answers the gRPC preface with text and
// hangs up) are answered alike, so ReplicateShard tells its caller nothing
// of what listens on the ports peer.allow lets the worker dial.
func TestReplicateShard_NoPortScan(t *testing.T) {
	dst := newTCPWorker(t, Config{})
	closedLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := closedLis.Addr().String()
	closedLis.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("-ERR unknown command 'PRI'\r\n"))
			c.Close()
		}
	}()
	answer := func(addr string) (codes.Code, string) {
		_, err := dst.client.ReplicateShard(context.Background(), replicateReq(addr, "v", 1))
		st := status.Convert(err)
		return st.Code(), strings.ReplaceAll(st.Message(), addr, "ADDR")
	}
	c1, m1 := answer(closed)
	c2, m2 := answer(other.Addr().String())
	if c1 != codes.Unavailable || c1 != c2 || m1 != m2 {
		t.Fatalf("a closed port answers %v %q, another service's %v %q: want both Unavailable, alike", c1, m1, c2, m2)
	}
}

// countingListener serves gs and counts the connections it accepts.
func countingListener(t *testing.T, gs *grpc.Server) (string, *atomic.Int32) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countedListener{Listener: lis}
	go gs.Serve(cl)
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), &cl.n
}

type countedListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func TestReplicateShard_PeerAllow(t *testing.T) {
	ctx := context.Background()
	src := newTCPWorker(t, Config{})
	put(t, src.harness, "v", 1, "data", storage.Metadata{Encoder: "fake"})
	gs := grpc.NewServer()
	src.srv.Register(gs)
	addr, accepts := countingListener(t, gs)
	_, port, _ := net.SplitHostPort(addr)

	only := func(entries ...string) *PeerAllow {
		a, err := ParsePeerAllow(entries)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	resolver := func(ips ...string) func(context.Context, string) ([]netip.Addr, error) {
		return func(_ context.Context, host string) ([]netip.Addr, error) {
			if host != "peer.test" {
				return nil, errors.New("unknown host")
			}
			var out []netip.Addr
			for _, ip := range ips {
				out = append(out, netip.MustParseAddr(ip))
			}
			return out, nil
		}
	}
	tests := []struct {
		name    string
		peer    PeerConfig
		source  string
		want    codes.Code
		dialled bool
	}{
		{"another address only", PeerConfig{Allow: only("127.0.0.2/32")}, addr, codes.PermissionDenied, false},
		{"another port only", PeerConfig{Allow: only("127.0.0.1:1")}, addr, codes.PermissionDenied, false},
		{"nothing", PeerConfig{Allow: only()}, addr, codes.PermissionDenied, false},
		{"a name resolving to an allowed and a disallowed address",
			PeerConfig{Resolve: resolver("127.0.0.1", "10.9.8.7")}, "peer.test:" + port, codes.PermissionDenied, false},
		{"a name resolving to a disallowed address first",
			PeerConfig{Resolve: resolver("10.9.8.7", "127.0.0.1")}, "peer.test:" + port, codes.PermissionDenied, false},
		{"a name resolving to an IPv4-mapped allowed address",
			PeerConfig{Resolve: resolver("::ffff:127.0.0.1")}, "peer.test:" + port, codes.OK, true},
		{"that address and port", PeerConfig{Allow: only(addr)}, addr, codes.OK, true},
		{"the unspecified address", PeerConfig{}, "0.0.0.0:" + port, codes.PermissionDenied, false},
		{"the unspecified IPv6 address", PeerConfig{}, "[::]:" + port, codes.PermissionDenied, false},
		{"IPv4-compatible loopback is not loopback", PeerConfig{}, "[::127.0.0.1]:" + port, codes.PermissionDenied, false},
		{"an IPv4-mapped address is its IPv4 address", PeerConfig{Allow: only("10.0.0.0/8")}, "[::ffff:127.0.0.1]:" + port, codes.PermissionDenied, false},
		{"the default: loopback", PeerConfig{}, addr, codes.OK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newTCPWorker(t, Config{Peer: tt.peer})
			before := accepts.Load()
			resp, err := dst.client.ReplicateShard(ctx, replicateReq(tt.source, "v", 1))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("ReplicateShard: %v, want %v", err, tt.want)
			}
			if dialled := accepts.Load() > before; dialled != tt.dialled {
				t.Fatalf("source dialled: %v, want %v", dialled, tt.dialled)
			}
			if err == nil && resp.GetMetadata().GetReplicatedFrom() != tt.source {
				t.Fatalf("replicated_from %q, want %q as the caller named it", resp.GetMetadata().GetReplicatedFrom(), tt.source)
			}
		})
	}
}

// hostileSource is a peer whose DownloadShard does what download says.
type hostileSource struct {
	pb.UnimplementedVideoProcessingServiceServer
	download func(req *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error
}

func (h *hostileSource) DownloadShard(req *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	return h.download(req, stream)
}

func startHostile(t *testing.T, download func(*pb.GetShardRequest, pb.VideoProcessingService_DownloadShardServer) error) string {
	t.Helper()
	gs := grpc.NewServer()
	pb.RegisterVideoProcessingServiceServer(gs, &hostileSource{download: download})
	return serve(t, gs)
}

func checksum(data string) string {
	sum := sha256.Sum256([]byte(data))
	return hex.EncodeToString(sum[:])
}

// honestMeta is what a source would say of data as chunk v/1.
func honestMeta(data string) *pb.ChunkMetadata {
	return &pb.ChunkMetadata{VideoId: "v", ChunkIndex: 1, EncodedSize: int64(len(data)), ChecksumSha256: checksum(data),
		Timestamp: "2024-01-02T03:04:05.000006Z", Encoder: "fake"}
}

// sends answers with meta, then each of frames.
func sends(meta *pb.ChunkMetadata, frames ...string) func(*pb.GetShardRequest, pb.VideoProcessingService_DownloadShardServer) error {
	return func(_ *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
		if err := stream.Send(&pb.DownloadShardResponse{Metadata: meta}); err != nil {
			return err
		}
		for _, f := range frames {
			if err := stream.Send(&pb.DownloadShardResponse{Data: []byte(f)}); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestReplicateShard_HostileSource(t *testing.T) {
	ctx := context.Background()
	const data = "the real shard"
	edit := func(f func(m *pb.ChunkMetadata)) *pb.ChunkMetadata {
		m := honestMeta(data)
		f(m)
		return m
	}
	stall := func(_ *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
		stream.Send(&pb.DownloadShardResponse{Metadata: honestMeta(data)})
		stream.Send(&pb.DownloadShardResponse{Data: []byte(data[:4])})
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	tests := []struct {
		name     string
		download func(*pb.GetShardRequest, pb.VideoProcessingService_DownloadShardServer) error
		want     codes.Code
	}{
		{"other bytes", sends(honestMeta(data), "the fake shard"), codes.DataLoss},
		{"more than it claims", sends(honestMeta(data), data, "and more"), codes.DataLoss},
		{"fewer than it claims", sends(honestMeta(data), data[:5]), codes.DataLoss},
		{"no checksum", sends(edit(func(m *pb.ChunkMetadata) { m.ChecksumSha256 = "" }), data), codes.DataLoss},
		{"another chunk's metadata", sends(edit(func(m *pb.ChunkMetadata) { m.ChunkIndex = 2 }), data), codes.DataLoss},
		{"another video's metadata", sends(edit(func(m *pb.ChunkMetadata) { m.VideoId = "w" }), data), codes.DataLoss},
		{"a bad timestamp", sends(edit(func(m *pb.ChunkMetadata) { m.Timestamp = "soon" }), data), codes.DataLoss},
		{"a NaN duration", sends(edit(func(m *pb.ChunkMetadata) { m.DurationSeconds = math.NaN() }), data), codes.DataLoss},
		{"a negative original size", sends(edit(func(m *pb.ChunkMetadata) { m.OriginalSize = -1 }), data), codes.DataLoss},
		{"too many settings", sends(edit(func(m *pb.ChunkMetadata) {
			m.EncoderSettings = map[string]string{}
			for i := range maxCopiedSettings + 1 {
				m.EncoderSettings[strings.Repeat("k", i+1)] = "v"
			}
		}), data), codes.DataLoss},
		{"no metadata", sends(nil, data), codes.DataLoss},
		// Strings from a peer are cut to 4 KiB (master/client), but 64
		// settings of '<' (6 bytes each in JSON) make metadata that Open
		// would not read back: the copy would be lost at the next start.
		{"settings escaping past 1 MiB", sends(edit(func(m *pb.ChunkMetadata) {
			m.EncoderSettings = map[string]string{}
			for i := range maxCopiedSettings {
				m.EncoderSettings[fmt.Sprint("k", i)] = strings.Repeat("<", 4000)
			}
		}), data), codes.DataLoss},
		{"metadata over the copy bound", sends(edit(func(m *pb.ChunkMetadata) {
			m.EncoderSettings = map[string]string{}
			for i := range 20 {
				m.EncoderSettings[fmt.Sprint("k", i)] = strings.Repeat("9", 4000)
			}
		}), data), codes.DataLoss},
		{"over the chunk limit", sends(edit(func(m *pb.ChunkMetadata) { m.EncodedSize = 1 << 40 }), data), codes.ResourceExhausted},
		{"stalls", stall, codes.DeadlineExceeded},
		{"refuses this worker", func(*pb.GetShardRequest, pb.VideoProcessingService_DownloadShardServer) error {
			return status.Error(codes.Unauthenticated, "who are you")
		}, codes.PermissionDenied},
		{"says it lost the shard", func(*pb.GetShardRequest, pb.VideoProcessingService_DownloadShardServer) error {
			return status.Error(codes.DataLoss, "corrupt")
		}, codes.DataLoss},
		{"fails", func(*pb.GetShardRequest, pb.VideoProcessingService_DownloadShardServer) error {
			return status.Error(codes.Internal, "oops")
		}, codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := startHostile(t, tt.download)
			dst := newTCPWorker(t, Config{MaxChunkBytes: 1 << 30, Peer: PeerConfig{IdleTimeout: 200 * time.Millisecond}})
			put(t, dst.harness, "v", 1, "the version stored here", storage.Metadata{Encoder: "fake"})
			before := storeState(t, dst.store.Root())
			_, err := dst.client.ReplicateShard(ctx, replicateReq(addr, "v", 1))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("ReplicateShard: %v, want %v", err, tt.want)
			}
			if after := storeState(t, dst.store.Root()); !maps.Equal(before, after) {
				t.Fatalf("a refused copy changed the store:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestReplicateShard_Bounded(t *testing.T) {
	ctx := context.Background()
	const data = "the real shard"
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	addr := startHostile(t, func(req *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
		started <- struct{}{}
		select {
		case <-release:
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
		return sends(honestMeta(data), data)(req, stream)
	})
	dst := newTCPWorker(t, Config{Peer: PeerConfig{MaxConcurrent: 1}})
	first := make(chan error, 1)
	go func() {
		_, err := dst.client.ReplicateShard(ctx, replicateReq(addr, "v", 1))
		first <- err
	}()
	<-started
	_, err := dst.client.ReplicateShard(ctx, replicateReq(addr, "v", 2))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "peer.max_concurrent_replications") {
		t.Fatalf("a replication beyond the limit: %v, want ResourceExhausted naming the key", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the replication within the limit: %v", err)
	}
	assertNoTemp(t, dst.store)
}

func TestReplicateShard_CallerCancels(t *testing.T) {
	const data = "the real shard"
	sent := make(chan struct{})
	addr := startHostile(t, func(_ *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
		stream.Send(&pb.DownloadShardResponse{Metadata: honestMeta(data)})
		stream.Send(&pb.DownloadShardResponse{Data: []byte(data[:4])})
		close(sent)
		<-stream.Context().Done()
		return nil
	})
	dst := newTCPWorker(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sent
		time.Sleep(50 * time.Millisecond) // the first bytes are in the Pending
		cancel()
	}()
	_, err := dst.client.ReplicateShard(ctx, replicateReq(addr, "v", 1))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("ReplicateShard: %v, want Canceled", err)
	}
	// The server side notices the cancellation after the client.
	waitUntil(t, "the pending copy removed", func() bool {
		names, _ := os.ReadDir(dst.store.TempDir())
		return len(names) == 0
	})
	if _, err := dst.store.Lookup("v", 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a cancelled copy is listed: %v", err)
	}
}

func TestParsePeerAllow(t *testing.T) {
	tests := []struct {
		entries []string
		ok      bool
		allows  []string
		refuses []string
	}{
		{DefaultPeerAllow(), true, []string{"127.0.0.1:1", "127.9.9.9:50061", "[::1]:5", "[::ffff:127.0.0.1]:5"},
			[]string{"10.0.0.1:1", "[::2]:5", "128.0.0.1:1"}},
		{[]string{"10.0.0.5"}, true, []string{"10.0.0.5:1", "10.0.0.5:65535"}, []string{"10.0.0.6:1"}},
		{[]string{"10.0.0.5:50061"}, true, []string{"10.0.0.5:50061"}, []string{"10.0.0.5:50062"}},
		{[]string{"[fd00::5]:7", "10.1.0.0/16"}, true, []string{"[fd00::5]:7", "10.1.255.3:9"}, []string{"[fd00::5]:8", "10.2.0.1:9"}},
		{[]string{"10.1.2.3/16"}, true, []string{"10.1.0.1:1"}, nil}, // masked
		{[]string{"::ffff:10.0.0.0/104"}, true, []string{"10.3.4.5:1"}, []string{"11.0.0.1:1"}},
		{[]string{" 10.0.0.5 "}, true, []string{"10.0.0.5:1"}, nil},
		{[]string{}, true, nil, []string{"127.0.0.1:1"}},
		{[]string{"worker-2:50061"}, false, nil, nil},
		{[]string{"localhost"}, false, nil, nil},
		{[]string{"10.0.0.0/33"}, false, nil, nil},
		{[]string{"10.0.0.5:0"}, false, nil, nil},
		{[]string{"fe80::1%eth0"}, false, nil, nil},
		{[]string{""}, false, nil, nil},
	}
	for _, tt := range tests {
		a, err := ParsePeerAllow(tt.entries)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePeerAllow(%q): %v, want ok %v", tt.entries, err, tt.ok)
			continue
		}
		if err != nil {
			continue
		}
		for _, s := range tt.allows {
			if !a.Allows(netip.MustParseAddrPort(s)) {
				t.Errorf("%q does not allow %s", tt.entries, s)
			}
		}
		for _, s := range tt.refuses {
			if a.Allows(netip.MustParseAddrPort(s)) {
				t.Errorf("%q allows %s", tt.entries, s)
			}
		}
	}
}

// FuzzParsePeerAllow: an entry is refused or parsed to what it says; the
// parsed list allows exactly the addresses its own entries name again.
func FuzzParsePeerAllow(f *testing.F) {
	for _, s := range []string{"127.0.0.0/8", "::1", "10.0.0.5:50061", "[fd00::1]:1", "::ffff:1.2.3.4", "host:1",
		"1.2.3.4/0", "0.0.0.0/0", "[::ffff:1.2.3.4]:80", "1.2.3.4:99999", "%", "/"} {
		f.Add(s, "10.0.0.5:50061")
	}
	f.Fuzz(func(t *testing.T, entry, probe string) {
		a, err := ParsePeerAllow([]string{entry})
		if err != nil {
			return
		}
		b, err := ParsePeerAllow(a.Entries())
		if err != nil {
			t.Fatalf("entries %q of a parsed list do not parse again: %v", a.Entries(), err)
		}
		if ap, err := netip.ParseAddrPort(probe); err == nil && a.Allows(ap) != b.Allows(ap) {
			t.Fatalf("%q and its reparse disagree on %s", entry, probe)
		}
		if strings.Contains(entry, "%") {
			t.Fatalf("%q: a zone was accepted", entry)
		}
	})
}

// FuzzParsePeerAddr: an accepted source_worker is one HOST:PORT whose
// String is the same address.
func FuzzParsePeerAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:50061", "[::1]:1", "w-2.example.com:443", "a:1", "1.2.3:4", "[::1%lo]:1", ":1", "a:01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePeerAddr(s)
		if err != nil {
			if !errors.Is(err, errInvalid) {
				t.Fatalf("%q: %v is not an invalid argument", s, err)
			}
			return
		}
		if p.port == 0 || p.host == "" {
			t.Fatalf("%q accepted as %+v", s, p)
		}
		again, err := parsePeerAddr(p.String())
		if err != nil || again != p {
			t.Fatalf("%q: String %q parses to %+v, %v", s, p.String(), again, err)
		}
		if !p.ip.IsValid() && !validHostName(p.host) {
			t.Fatalf("%q: host %q is neither", s, p.host)
		}
	})
}

func TestCheckLabels(t *testing.T) {
	many := map[string]string{}
	for i := range maxLabels + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		labels map[string]string
		ok     bool
	}{
		{nil, true},
		{map[string]string{"zone": "eu-west-1a", "host": "h1.example_2"}, true},
		{map[string]string{"zone": ""}, false},
		{map[string]string{"": "a"}, false},
		{map[string]string{"zone": "a b"}, false},
		{map[string]string{"zone": "a\x1b[2J"}, false},
		{map[string]string{"zöne": "a"}, false},
		{map[string]string{"zone": strings.Repeat("a", 64)}, false},
		{map[string]string{strings.Repeat("a", 63): strings.Repeat("a", 63)}, true},
		{many, false},
	}
	for _, tt := range tests {
		if err := CheckLabels(tt.labels); (err == nil) != tt.ok {
			t.Errorf("CheckLabels(%q): %v, want ok %v", tt.labels, err, tt.ok)
		}
	}
}

func TestCheckHealth_LabelsAndQuarantines(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{Labels: map[string]string{"zone": "a", "host": "h1"}})
	put(t, h, "v", 2, "data", storage.Metadata{Encoder: "fake"})
	if err := h.store.Quarantine("v", 2, "test reason"); err != nil {
		t.Fatal(err)
	}
	resp := health(t, h)
	if !maps.Equal(resp.GetLabels(), map[string]string{"zone": "a", "host": "h1"}) {
		t.Fatalf("labels %v", resp.GetLabels())
	}
	q := resp.GetQuarantinedChunks()
	if len(q) != 1 || q[0].GetVideoId() != "v" || q[0].GetChunkIndex() != 2 || q[0].GetReason() != "test reason" {
		t.Fatalf("quarantined chunks %v", q)
	}
	if _, err := time.Parse(time.RFC3339, q[0].GetTime()); err != nil {
		t.Fatalf("time %q: %v", q[0].GetTime(), err)
	}
}
