package wirecodec

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/videoshard/videoshard/proto"
)

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestCodec_SameWireAsStock: what Codec writes the stock codec reads as
// the same message, and what the stock codec writes Codec reads, for
// payloads below, at and above minDirect, with and without the other
// fields, and the message left as it was given.
func TestCodec_SameWireAsStock(t *testing.T) {
	meta := &pb.ChunkMetadata{VideoId: "v", ChunkIndex: 3, EncodedSize: 12345, ChecksumSha256: "ab"}
	var msgs []proto.Message
	for _, n := range []int{0, 1, minDirect - 1, minDirect, 1<<20 + 3} {
		msgs = append(msgs,
			&pb.GetShardResponse{Success: true, ShardData: payload(n), Message: "chunk 3", Metadata: meta},
			&pb.GetShardResponse{ShardData: payload(n)},
			&pb.DownloadShardResponse{Data: payload(n)},
			&pb.DownloadShardResponse{Metadata: meta, Data: payload(n)},
		)
	}
	msgs = append(msgs, &pb.HealthCheckResponse{IsHealthy: true, WorkerId: "w"}, &pb.DownloadShardResponse{Metadata: meta})
	for _, m := range msgs {
		before := proto.Clone(m)
		enc, err := Codec{}.Marshal(m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !proto.Equal(m, before) {
			t.Fatalf("%T: Marshal changed the message", m)
		}
		got := m.ProtoReflect().New().Interface()
		if err := stock().Unmarshal(mem.BufferSlice{mem.SliceBuffer(enc.Materialize())}, got); err != nil {
			t.Fatalf("%T: the stock codec cannot read it: %v", m, err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("%T: the stock codec reads another message", m)
		}
		stockEnc, err := stock().Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got = m.ProtoReflect().New().Interface()
		if err := (Codec{}).Unmarshal(split(stockEnc.Materialize(), 5, 16384), got); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("%T: Codec reads another message than the stock codec wrote", m)
		}
	}
}

// split cuts b into gRPC-like buffers: first bytes, then pieces of size.
func split(b []byte, first, size int) mem.BufferSlice {
	var out mem.BufferSlice
	if len(b) > first {
		out, b = append(out, mem.SliceBuffer(b[:first])), b[first:]
	}
	for len(b) > 0 {
		n := min(size, len(b))
		out, b = append(out, mem.SliceBuffer(b[:n])), b[n:]
	}
	return out
}

// TestCodec_PayloadOnlyRefusesOthers: payloadOnly takes only a message
// that is field 2 and nothing else, of exactly the length it says.
func TestCodec_PayloadOnlyRefusesOthers(t *testing.T) {
	good, _ := stock().Marshal(&pb.DownloadShardResponse{Data: payload(minDirect)})
	raw := good.Materialize()
	if got, ok := payloadOnly(split(raw, 1, 1000), Codec{}.payloadBuffer); !ok || !bytes.Equal(got, payload(minDirect)) {
		t.Fatalf("payload-only message not taken: ok %v", ok)
	}
	for name, b := range map[string][]byte{
		"trailing field": append(append([]byte{}, raw...), 0x0a, 0),
		"short":          raw[:len(raw)-1],
		"other field":    append([]byte{0x1a}, raw[1:]...),
		"empty":          {},
	} {
		if _, ok := payloadOnly(split(b, 2, 4096), Codec{}.payloadBuffer); ok {
			t.Errorf("%s: taken as a payload", name)
		}
	}
}

// TestOnWritten: a registered message's done runs once gRPC frees its
// payload (a large one) or at once after marshalling (a small one, which
// is copied), or from Forget if it was never marshalled; never twice. Its
// freed runs after done, and not from Forget.
func TestOnWritten(t *testing.T) {
	for _, size := range []int{minDirect - 1, minDirect, 4 * minDirect, 3*pieceBytes + 5} {
		c := New()
		var runs, freed int
		msg := &pb.DownloadShardResponse{Data: make([]byte, size)}
		var took int
		c.OnWritten(msg, func() { runs++ }, func(n int) { took += n }, func() {
			if runs != 1 {
				t.Errorf("%d bytes: freed ran with done run %d times", size, runs)
			}
			freed++
		})
		out, err := c.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if large := size >= minDirect; large != (runs == 0) || runs != freed {
			t.Fatalf("%d bytes: done ran %d times, freed %d, before the buffers were freed", size, runs, freed)
		}
		if c.Forget(msg) {
			t.Fatalf("%d bytes: Forget found a message Marshal took", size)
		}
		out.Free()
		if runs != 1 || freed != 1 {
			t.Fatalf("%d bytes: done ran %d times, freed %d, want 1", size, runs, freed)
		}
		if large := size >= minDirect; large && took != size || !large && took != 0 {
			t.Fatalf("%d bytes: taken told of %d", size, took)
		}
	}

	c := New()
	var runs int
	msg := &pb.GetShardResponse{ShardData: make([]byte, minDirect)}
	c.OnWritten(msg, func() { runs++ }, nil, func() { t.Error("Forget ran freed: a Marshal may still send the bytes") })
	if !c.Forget(msg) || runs != 1 || c.Forget(msg) || runs != 1 {
		t.Fatalf("Forget of a message never marshalled: done ran %d times, want 1", runs)
	}
	var zero Codec // no registry: OnWritten and Forget do nothing
	zero.OnWritten(msg, func() { t.Fatal("the zero Codec ran a done") }, nil, nil)
	if zero.Forget(msg) {
		t.Fatal("the zero Codec's Forget found a message")
	}
}

// TestCodec_RecycleReusesPayloads: a payload given back is the buffer of
// a later one that fits in it, whatever it held; one too small is never
// used; the zero Codec allocates every time. (A sync.Pool may drop what it
// is given, and does so at random under the race detector: reuse is
// asked of one try in 20.)
func TestCodec_RecycleReusesPayloads(t *testing.T) {
	recv := func(c Codec, n int) []byte {
		t.Helper()
		enc, err := stock().Marshal(&pb.DownloadShardResponse{Data: payload(n)})
		if err != nil {
			t.Fatal(err)
		}
		var m pb.DownloadShardResponse
		if err := c.Unmarshal(split(enc.Materialize(), 3, 16384), &m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Data, payload(n)) {
			t.Fatalf("a %d-byte payload came back other bytes", n)
		}
		return m.Data
	}
	c := New()
	reused := false
	for range 20 {
		first := recv(c, 2*minDirect)
		clear(first)
		c.Recycle(first)
		if next := recv(c, 2*minDirect-5); &next[0] == &first[0] {
			reused = true
		}
	}
	if !reused {
		t.Fatal("a recycled buffer large enough was never reused")
	}
	for range 20 {
		small := recv(c, minDirect)
		c.Recycle(small)
		if bigger := recv(c, 3*minDirect); &bigger[0] == &small[0] {
			t.Fatal("a recycled buffer too small was used")
		}
	}
	for range 20 {
		zero := recv(Codec{}, minDirect)
		Codec{}.Recycle(zero)
		if again := recv(Codec{}, minDirect); &again[0] == &zero[0] {
			t.Fatal("the zero Codec reused a buffer")
		}
	}
}

// TestLenient: a Lenient codec takes a request that does not decode as an
// empty one and says why once; the others refuse it.
func TestLenient(t *testing.T) {
	bad := mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x02, 0xff, 0xfe})} // video_id not UTF-8
	if err := (Codec{}).Unmarshal(bad, &pb.GetVideoMetadataRequest{}); err == nil {
		t.Fatal("the stock behaviour took a malformed message")
	}
	c := New().Lenient()
	req := &pb.GetVideoMetadataRequest{VideoId: "stale"}
	if err := c.Unmarshal(bad, req); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if req.GetVideoId() != "" {
		t.Errorf("video id %q, want the message empty", req.GetVideoId())
	}
	if err := c.Malformed(req); err == nil {
		t.Error("Malformed: nil, want why")
	}
	if err := c.Malformed(req); err != nil {
		t.Errorf("Malformed asked again: %v, want nil (said once)", err)
	}
	good, err := c.Marshal(&pb.GetVideoMetadataRequest{VideoId: "v"})
	if err != nil {
		t.Fatal(err)
	}
	ok := &pb.GetVideoMetadataRequest{}
	if err := c.Unmarshal(good, ok); err != nil || ok.GetVideoId() != "v" || c.Malformed(ok) != nil {
		t.Errorf("a well-formed message: %v, %q", err, ok.GetVideoId())
	}
}
