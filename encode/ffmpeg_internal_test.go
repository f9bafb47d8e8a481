package encode

import "testing"

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

func TestTidyReason(t *testing.T) {
	tests := []struct{ stderr, in, want string }{
		{"file:/proc/1/fd/15: Invalid data\n", "/proc/1/fd/15", "input: Invalid data"},
		{"/proc/1/fd/150: No such file\n/proc/1/fd/15 too", "/proc/1/fd/15", "/proc/1/fd/150: No such file; input too"},
		{"  \nfirst\n\nsecond  ", "", "first; second"},
	}
	for _, tt := range tests {
		if got := tidyReason(tt.stderr, tt.in); got != tt.want {
			t.Errorf("tidyReason(%q, %q) = %q, want %q", tt.stderr, tt.in, got, tt.want)
		}
	}
}
