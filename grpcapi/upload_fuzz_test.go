package grpcapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// fuzzMaxChunk is the fuzzed server's limits.max_chunk_bytes: small, so
// that both sides of it are reachable.
const fuzzMaxChunk = 8 << 10

// fuzzIDs are the video ids a header can carry: valid and not.
var fuzzIDs = []string{"v", "video.mp4", "a_chunk_1", "", ".hidden", "metadata", "../x", "a/b", "a\x00b",
	strings.Repeat("x", storage.MaxVideoIDLen), strings.Repeat("x", storage.MaxVideoIDLen+1)}

// fuzzFrame is one message of an upload: a header, data, or an empty
// message with neither.
type fuzzFrame struct {
	header *pb.UploadHeader
	data   []byte
	none   bool
}

func (f fuzzFrame) message() *pb.UploadChunkRequest {
	switch {
	case f.header != nil:
		return &pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: f.header}}
	case f.none:
		return &pb.UploadChunkRequest{}
	}
	return &pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: f.data}}
}

// fuzzDecodeFrames turns fuzz bytes into at most 48 frames. Each frame
// starts with an op byte: 0 header (id, chunk and size bytes follow), 1 data
// of a given length, 2 data completing the last header's size, 3 empty data,
// 4 a message with no frame.
func fuzzDecodeFrames(in []byte) []fuzzFrame {
	next := func() int {
		if len(in) == 0 {
			return 0
		}
		b := in[0]
		in = in[1:]
		return int(b)
	}
	var frames []fuzzFrame
	var total, sent int64
	for len(in) > 0 && len(frames) < 48 {
		switch next() % 5 {
		case 0:
			id := fuzzIDs[next()%len(fuzzIDs)]
			chunk := int32(int8(next()))
			if chunk == 127 {
				chunk = math.MaxInt32
			}
			var size int64
			switch mode := next(); mode % 8 {
			case 0:
				size = 0
			case 1:
				size = -int64(next())
			case 2:
				size = fuzzMaxChunk + 1 + int64(next())%3
			case 3:
				size = math.MaxInt64
			default:
				size = int64(next()<<8|next())%fuzzMaxChunk + 1
			}
			frames = append(frames, fuzzFrame{header: &pb.UploadHeader{VideoId: id, ChunkIndex: chunk, TotalSize: size}})
			total, sent = size, 0
		case 1:
			n := (next()<<8 | next()) % (3 << 10)
			frames = append(frames, fuzzFrame{data: fuzzBytes(n, len(frames))})
			sent += int64(n)
		case 2:
			n := max(1, min(total-sent, fuzzMaxChunk+1))
			frames = append(frames, fuzzFrame{data: fuzzBytes(int(n), len(frames))})
			sent += n
		case 3:
			frames = append(frames, fuzzFrame{data: []byte{}})
		case 4:
			frames = append(frames, fuzzFrame{none: true})
		}
	}
	return frames
}

func fuzzBytes(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed*7 + i>>8)
	}
	return b
}

// fuzzExpect is the documented outcome of an upload: OK exactly when the
// stream is one header (valid id and index, 0 < total_size <= the limit)
// followed by data (empty messages allowed) totalling total_size; a size
// over the limit is ResourceExhausted; anything else InvalidArgument. On OK
// it also returns the uploaded bytes.
func fuzzExpect(frames []fuzzFrame) (codes.Code, []byte) {
	if len(frames) == 0 || frames[0].header == nil {
		return codes.InvalidArgument, nil
	}
	h := frames[0].header
	switch {
	case storage.ValidateVideoID(h.GetVideoId()) != nil || h.GetChunkIndex() < 0 || h.GetTotalSize() <= 0:
		return codes.InvalidArgument, nil
	case h.GetTotalSize() > fuzzMaxChunk:
		return codes.ResourceExhausted, nil
	}
	var data []byte
	for _, f := range frames[1:] {
		if f.header != nil {
			return codes.InvalidArgument, nil
		}
		data = append(data, f.data...)
		if int64(len(data)) > h.GetTotalSize() {
			return codes.InvalidArgument, nil
		}
	}
	if int64(len(data)) != h.GetTotalSize() {
		return codes.InvalidArgument, nil
	}
	return codes.OK, data
}

// FuzzUploadFrames drives UploadChunk on an in-process server (bufconn,
// simulated encoder, real store) with a frame sequence decoded from the
// fuzz input. The status must be exactly the documented one (never Internal
// or Unknown, never a hang); an OK must carry the checksum of the simulated
// encoding of exactly the bytes sent, and the chunk must then be committed
// with it.
func FuzzUploadFrames(f *testing.F) {
	store, err := storage.Open(storage.Options{Root: fuzzUploadDir(f)})
	if err != nil {
		f.Fatal(err)
	}
	enc, err := encode.NewSimulated(encode.SimulatedConfig{Ratio: 0.5})
	if err != nil {
		f.Fatal(err)
	}
	srv := grpcapi.NewServer(store, enc, grpcapi.Config{
		WorkerID: "fuzz", MaxConcurrentTasks: 1, MaxQueuedTasks: 64, MaxChunkBytes: fuzzMaxChunk,
	})
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	srv.Register(gs)
	go gs.Serve(lis)
	f.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	client := pb.NewVideoProcessingServiceClient(conn)

	for _, seed := range [][]byte{
		{},                                       // nothing at all
		{1, 0, 10},                               // data first
		{0, 0, 0, 4, 0, 100, 2},                  // header "v"/0, 101 bytes, completed
		{0, 1, 5, 4, 0, 100, 1, 0, 50, 1, 0, 51}, // two frames that add up
		{0, 1, 5, 4, 0, 100, 1, 0, 50, 1, 0, 52}, // one byte too many
		{0, 1, 5, 4, 0, 100, 1, 0, 50},           // too few
		{0, 0, 0, 4, 0, 100, 2, 0, 0, 0, 4, 0, 100, 2}, // a second header
		{0, 0, 0, 4, 0, 100, 3, 4, 2, 3, 4},            // empty messages around the data
		{0, 0, 0, 0},                                   // total_size 0
		{0, 0, 0, 1, 5},                                // negative total_size
		{0, 0, 0, 2, 0, 2},                             // just over the limit
		{0, 0, 0, 3},                                   // MaxInt64
		{0, 0, 0, 4, 0x1f, 0xff, 2},                    // exactly the limit
		{0, 3, 0, 4, 0, 10, 2},                         // empty id
		{0, 5, 0, 4, 0, 10, 2},                         // reserved id
		{0, 6, 0, 4, 0, 10, 2},                         // traversal id
		{0, 0, 0xff, 4, 0, 10, 2},                      // chunk -1
		{0, 0, 127, 4, 0, 10, 2},                       // chunk MaxInt32
		{0, 9, 1, 4, 0, 10, 2},                         // longest id
		{0, 10, 1, 4, 0, 10, 2},                        // id one byte too long
		{4, 0, 0, 0, 4, 0, 10, 2},                      // an empty message first
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		frames := fuzzDecodeFrames(in)
		want, data := fuzzExpect(frames)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := fuzzSend(ctx, client, frames)
		got := status.Code(err)
		if got != want {
			t.Fatalf("upload of %d frames %s: %v; want %v", len(frames), fuzzDescribe(frames), err, want)
		}
		if want != codes.OK {
			return
		}
		h := frames[0].header
		sum := sha256.Sum256(fuzzSimulated(data))
		wantSum := hex.EncodeToString(sum[:])
		if resp.GetChecksumSha256() != wantSum || resp.GetOriginalSize() != h.GetTotalSize() || !resp.GetSuccess() {
			t.Fatalf("upload %s: OK with %d bytes sha %s; want %d bytes sha %s", fuzzDescribe(frames),
				resp.GetOriginalSize(), resp.GetChecksumSha256(), h.GetTotalSize(), wantSum)
		}
		m, err := store.Lookup(h.GetVideoId(), int(h.GetChunkIndex()))
		if err != nil || m.ChecksumSHA256 != wantSum {
			t.Fatalf("upload %s acknowledged but the store has %v (%v)", fuzzDescribe(frames), m.ChecksumSHA256, err)
		}
	})
}

// fuzzUploadDir returns a new directory for the fuzzed server's store,
// removed at the end: on tmpfs (/dev/shm) when there is one, so that a
// commit's fsyncs cost nothing and a busy disk does not stall the fuzzer,
// else in tb.TempDir.
func fuzzUploadDir(tb testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "videoshard-fuzz-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// fuzzSend sends frames on one UploadChunk stream. A Send that fails with
// io.EOF means the server has answered; CloseAndRecv has its status.
func fuzzSend(ctx context.Context, c pb.VideoProcessingServiceClient, frames []fuzzFrame) (*pb.ProcessChunkResponse, error) {
	stream, err := c.UploadChunk(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range frames {
		if err := stream.Send(f.message()); err != nil {
			if err == io.EOF {
				break
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

func fuzzDescribe(frames []fuzzFrame) string {
	var b strings.Builder
	for _, f := range frames {
		switch {
		case f.header != nil:
			b.WriteString("[header " + strings.ReplaceAll(f.header.String(), "  ", " ") + "]")
		case f.none:
			b.WriteString("[none]")
		default:
			b.WriteString("[data " + strconv.Itoa(len(f.data)) + "]")
		}
	}
	return b.String()
}

// fuzzSimulated is the simulated encoder's documented output at ratio 0.5:
// the first round(len/2) bytes of each 64 KiB block.
func fuzzSimulated(in []byte) []byte {
	var out []byte
	for off := 0; off < len(in); off += 64 << 10 {
		b := in[off:min(off+64<<10, len(in))]
		out = append(out, b[:int(math.Round(0.5*float64(len(b))))]...)
	}
	return out
}
