package media

import (
	"math"
	"strings"
	"testing"
)

// TestAudioLength_MatroskaRounding: Matroska gives an AAC packet of
// 21.333 ms as 21 ms, its timestamps rounded each on its own: the sound's
// length is the time from each packet to the next, not the sum of the
// rounded durations (an hour would lose a minute); a gap is not filled.
func TestAudioLength_MatroskaRounding(t *testing.T) {
	var w audioLengthWriter
	for _, line := range []string{
		"1,0.000000,0.021000,300,K_", "1,0.021000,0.021000,300,K_", "1,0.043000,0.021000,300,K_", "1,0.064000,0.021000,300,K_",
		"1,1.000000,0.021000,300,K_", // after a gap
	} {
		w.parse([]byte(line))
	}
	if w.err != nil {
		t.Fatal(w.err)
	}
	if got, want := w.tracks[0].Length, 0.064+0.021+0.021; math.Abs(got-want) > 1e-9 {
		t.Errorf("Length = %.6f, want %.6f", got, want)
	}
}

// TestCopyStart: the source's first played packet is found in a copy by
// counting back from the end, confirmed by the packets' sizes.
func TestCopyStart(t *testing.T) {
	// track parses packets "pts,size[,D]" of stream 1.
	track := func(packets ...string) audioTrack {
		var w audioLengthWriter
		for _, p := range packets {
			f := strings.Split(p, ",")
			flags := "K_"
			if len(f) > 2 {
				flags = "KD"
			}
			w.parse([]byte("1," + f[0] + ",0.021333," + f[1] + "," + flags))
		}
		if w.err != nil {
			t.Fatal(w.err)
		}
		return w.tracks[0]
	}
	// An MP4's AAC: its priming flagged discard, before a 2-packet pre-roll.
	src := track("-0.064,10,D", "-0.043,11,D", "-0.021,12,D", "0.000,13", "0.021,14", "0.043,15")
	tests := []struct {
		name string
		out  audioTrack
		want float64 // NaN: not found
	}{
		{"every packet, the priming played", track("0.000,10", "0.021,11", "0.043,12", "0.064,13", "0.085,14", "0.107,15"), 0.064},
		{"the pre-roll dropped", track("0.000,12", "0.021,13", "0.043,14", "0.064,15"), 0.021},
		{"not a copy", track("0.000,20", "0.021,21", "0.043,22", "0.064,23"), math.NaN()},
		{"a packet lost midway", track("0.000,10", "0.021,11", "0.043,12", "0.064,13", "0.085,15"), math.NaN()},
		{"more packets than the source", track("0.000,9", "0.000,10", "0.021,11", "0.043,12", "0.064,13", "0.085,14", "0.107,15"), math.NaN()},
	}
	for _, tt := range tests {
		got, ok := copyStart(src, tt.out)
		if !ok {
			got = math.NaN()
		}
		if !(got == tt.want || math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("%s: start %v, want %v", tt.name, got, tt.want)
		}
	}
	// Timestamps that restart (captures run together): the first played
	// packet is the first in the file, not the earliest.
	restart := track("1.400,10", "1.421,11", "1.000,12", "1.021,13")
	if got, ok := copyStart(restart, track("0.000,10", "0.021,11", "2.000,12", "2.021,13")); restart.Start != 1.4 || !ok || got != 0 {
		t.Errorf("restarting timestamps: Start %v, start in the copy %v, %v; want 1.4, 0", restart.Start, got, ok)
	}
	// A converted stream starts its encoder's delay after its first packet.
	aac := SideStream{Type: "audio", Codec: "pcm_s16le", Encoder: "aac"}
	if got, ok := aac.audioStart(src, track("0.000,30", "0.021,31"), 48000); !ok || math.Abs(got-1024.0/48000) > 1e-9 {
		t.Errorf("AAC encoded: start %v, %v; want %v", got, ok, 1024.0/48000)
	}
}
