package grpcapi

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
)

// The trim of a unary request and of an upload's header reach the encoder.
func TestTrimReachesTheEncoder(t *testing.T) {
	data := []byte("chunk bytes")
	tests := []struct {
		name string
		send func(h *harness, trim *pb.FrameTrim) (*pb.ProcessChunkResponse, error)
	}{
		{"ProcessChunk", func(h *harness, trim *pb.FrameTrim) (*pb.ProcessChunkResponse, error) {
			return h.client.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 1, ChunkData: data, Trim: trim})
		}},
		{"UploadChunk", func(h *harness, trim *pb.FrameTrim) (*pb.ProcessChunkResponse, error) {
			return uploadChunk(t, h, &pb.UploadHeader{VideoId: "v", ChunkIndex: 1, Trim: trim}, data, 4)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := &fakeEncoder{}
			h := newHarness(t, enc, Config{})
			resp, err := tt.send(h, &pb.FrameTrim{StartFrame: 12, FrameCount: 30})
			if err != nil {
				t.Fatal(err)
			}
			if got := enc.lastOptions().Trim; got == nil || *got != (encode.Trim{Start: 12, Frames: 30}) {
				t.Fatalf("encoder got trim %+v, want {Start:12 Frames:30}", got)
			}
			if s := resp.GetMetadata().GetEncoderSettings(); s[encode.SettingTrimStart] != "12" || s[encode.SettingTrimFrames] != "30" {
				t.Errorf("encoder_settings = %v, want the trim recorded", s)
			}
			if _, err := tt.send(h, nil); err != nil {
				t.Fatal(err)
			}
			if got := enc.lastOptions().Trim; got != nil {
				t.Fatalf("a request without a trim reached the encoder with %+v", *got)
			}
		})
	}
}

// With the real (simulated) encoder's settings: a retry is answered from
// the store only when trimmed alike; another trim of the same bytes is
// encoded again. Bad trims are InvalidArgument, naming the field.
func TestTrimIdempotencyAndValidation(t *testing.T) {
	sim, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, sim, Config{})
	ctx := context.Background()
	data := []byte(strings.Repeat("same bytes, different trims; ", 100))
	unary := func(trim *pb.FrameTrim) (*pb.ProcessChunkResponse, error) {
		return h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: data, Trim: trim})
	}
	upload := func(trim *pb.FrameTrim) (*pb.ProcessChunkResponse, error) {
		return uploadChunk(t, h, &pb.UploadHeader{VideoId: "v", ChunkIndex: 0, Trim: trim}, data, 512)
	}
	a := &pb.FrameTrim{StartFrame: 0, FrameCount: 10}
	b := &pb.FrameTrim{StartFrame: 5, FrameCount: 10}
	steps := []struct {
		name   string
		send   func(*pb.FrameTrim) (*pb.ProcessChunkResponse, error)
		trim   *pb.FrameTrim
		stored bool // answered from the store
	}{
		{"trim a", unary, a, false},
		{"trim a again", unary, a, true},
		{"trim a again, uploaded", upload, a, true},
		{"trim b", unary, b, false},
		{"trim b again, uploaded", upload, b, true},
		{"no trim", upload, nil, false},
		{"no trim again", unary, nil, true},
		{"trim a once more", upload, a, false},
	}
	for _, st := range steps {
		resp, err := st.send(st.trim)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := strings.Contains(resp.GetMessage(), "already stored"); got != st.stored {
			t.Fatalf("%s: message %q, want stored=%v", st.name, resp.GetMessage(), st.stored)
		}
		s := resp.GetMetadata().GetEncoderSettings()
		var wantStart, wantFrames string
		if st.trim != nil {
			wantStart, wantFrames = strconv.FormatInt(st.trim.GetStartFrame(), 10), strconv.FormatInt(st.trim.GetFrameCount(), 10)
		}
		if s[encode.SettingTrimStart] != wantStart || s[encode.SettingTrimFrames] != wantFrames {
			t.Fatalf("%s: stored chunk's settings %v, want trim %q/%q", st.name, s, wantStart, wantFrames)
		}
	}

	bad := []struct {
		trim *pb.FrameTrim
		want string
	}{
		{&pb.FrameTrim{StartFrame: -1, FrameCount: 5}, "start_frame -1"},
		{&pb.FrameTrim{}, "frame_count 0"},
		{&pb.FrameTrim{StartFrame: 1 << 31, FrameCount: 1}, "exceeds"},
	}
	for _, tt := range bad {
		for name, send := range map[string]func(*pb.FrameTrim) (*pb.ProcessChunkResponse, error){"unary": unary, "upload": upload} {
			_, err := send(tt.trim)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.want) {
				t.Errorf("%s with trim %v: %v, want InvalidArgument naming %q", name, tt.trim, err, tt.want)
			}
		}
	}
}

// A worker whose encoder cannot trim (plainEncoder hides every optional
// interface) does not say it can, and refuses a trim rather than encoding
// the whole chunk.
func TestTrimRefusedByAnEncoderThatCannotTrim(t *testing.T) {
	enc := &fakeEncoder{}
	h := newHarness(t, plainEncoder{enc}, Config{})
	if f := health(t, h).GetFeatures(); len(f) != 0 {
		t.Fatalf("features = %q, want none", f)
	}
	_, err := h.client.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{
		VideoId: "v", ChunkData: []byte("x"), Trim: &pb.FrameTrim{FrameCount: 1}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "cannot trim") {
		t.Fatalf("trim sent to an encoder that cannot trim: %v, want InvalidArgument", err)
	}
	_, err = uploadChunk(t, h, &pb.UploadHeader{VideoId: "v", Trim: &pb.FrameTrim{FrameCount: 1}}, []byte("x"), 1)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("trimmed upload to an encoder that cannot trim: %v, want InvalidArgument", err)
	}
	if n := enc.calls.Load(); n != 0 {
		t.Fatalf("encoder called %d times", n)
	}
	if _, err := h.client.ProcessChunk(context.Background(), &pb.ProcessChunkRequest{VideoId: "v", ChunkData: []byte("x")}); err != nil {
		t.Fatalf("untrimmed chunk: %v", err)
	}
}
