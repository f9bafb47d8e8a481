package encode

import (
	"context"
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		writes []string
		max    int
		want   string
	}{
		{[]string{"short\n"}, 16, "short"},
		{[]string{"line one\n", "line two\n", "line three\n"}, 16, "line three"}, // starts at a line
		{[]string{strings.Repeat("x", 40) + "\nend"}, 8, "end"},
		{[]string{"abc", "def"}, 4, "cdef"}, // no newline to cut at
	}
	for _, tt := range tests {
		b := newTailBuffer(tt.max)
		for _, w := range tt.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := b.String(); got != tt.want {
			t.Errorf("writes %q max %d: String() = %q, want %q", tt.writes, tt.max, got, tt.want)
		}
	}
}

func TestRun_StdoutIsBounded(t *testing.T) {
	out := &limitedBuffer{max: 10}
	_, err := run(context.Background(), command{name: "/bin/sh", args: []string{"-c", "yes | head -c 1000000"}, stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	if !out.overflowed || out.Len() != 10 {
		t.Fatalf("overflowed %v len %d, want true and 10", out.overflowed, out.Len())
	}
}

func TestRun_StderrTailOnFailure(t *testing.T) {
	stderr, err := run(context.Background(), command{name: "/bin/sh", args: []string{"-c", "echo first >&2; echo last >&2; exit 3"}})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	if stderr != "first\nlast" {
		t.Fatalf("stderr = %q", stderr)
	}
}

func TestParseEncodersAndMuxers(t *testing.T) {
	enc := parseEncoders("Encoders:\n V..... = Video\n ------\n V....D libx264   libx264 H.264\n A..... aac   AAC\n")
	if !enc["libx264"] || !enc["aac"] || enc["="] || len(enc) != 2 {
		t.Errorf("parseEncoders = %v", enc)
	}
	mux := parseMuxers("File formats:\n D. = Demuxing supported\n .E = Muxing supported\n --\n  E matroska   Matroska\n DE mov,mp4  QuickTime\n D  hls   HLS\n")
	if !mux["matroska"] || !mux["mp4"] || !mux["mov"] || mux["hls"] || len(mux) != 3 {
		t.Errorf("parseMuxers = %v", mux)
	}
}
