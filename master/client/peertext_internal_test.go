package client

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"chunk 3 stored", "chunk 3 stored"},
		{"café ✓ 日本", "café ✓ 日本"},
		{"\x1b]0;pwned\x07title", "\uFFFD]0;pwned\uFFFDtitle"},
		{"\x1b[2J\x1b[Hcleared", "\uFFFD[2J\uFFFD[Hcleared"},
		{"line\nbreak\rover", "line\uFFFDbreak\uFFFDover"},
		{"abc\u202Egpj.exe", "abc\uFFFDgpj.exe"}, // right-to-left override
		{"bad \xff\xfe utf-8", "bad \uFFFD utf-8"},
		{"\u0085next line (C1)", "\uFFFDnext line (C1)"},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := printable(strings.Repeat("é", maxPeerText))
	if len(long) > maxPeerText+3 || !strings.HasSuffix(long, "...") {
		t.Errorf("printable of %d bytes: %d bytes, suffix %q", 2*maxPeerText, len(long), long[len(long)-3:])
	}
}

// cleanReply makes every string of a reply printable, in nested messages,
// lists and map keys and values, and a status error's message; bytes stay.
func TestCleanReply(t *testing.T) {
	reply := &pb.GetVideoMetadataResponse{
		WorkerId: "v\x1b[31m",
		ChunksMetadata: []*pb.ChunkMetadata{{
			WorkerId:        "w\x07",
			EncoderSettings: map[string]string{"k\x1b": "v\x1b", "ok": "fine"},
		}},
	}
	if err := cleanReply(reply, nil); err != nil {
		t.Fatal(err)
	}
	m := reply.GetChunksMetadata()[0]
	if reply.GetWorkerId() != "v\uFFFD[31m" || m.GetWorkerId() != "w\uFFFD" ||
		m.GetEncoderSettings()["k\uFFFD"] != "v\uFFFD" || m.GetEncoderSettings()["ok"] != "fine" || len(m.GetEncoderSettings()) != 2 {
		t.Errorf("cleaned reply: %v", reply)
	}
	data := &pb.DownloadShardResponse{Data: []byte("\x1b\x00raw")}
	if err := cleanReply(data, nil); err != nil || string(data.GetData()) != "\x1b\x00raw" {
		t.Errorf("bytes changed: %q, %v", data.GetData(), err)
	}
	err := cleanReply(nil, status.Error(codes.Internal, "boom\x1b]0;x\x07"))
	if st, _ := status.FromError(err); st.Code() != codes.Internal || st.Message() != "boom\uFFFD]0;x\uFFFD" {
		t.Errorf("cleaned error: %v", err)
	}
	plain := errors.New("local \x1b")
	if got := cleanReply(nil, plain); got != plain {
		t.Errorf("a local error was changed: %v", got)
	}
}
