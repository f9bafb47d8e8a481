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
