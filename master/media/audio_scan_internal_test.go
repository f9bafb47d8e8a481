package media

import (
	"math"
	"testing"
)

// TestAudioLength_MatroskaRounding: Matroska gives an AAC packet of
// 21.333 ms as 21 ms, its timestamps rounded each on its own: the sound's
// length is the time from each packet to the next, not the sum of the
// rounded durations (an hour would lose a minute); a gap is not filled.
func TestAudioLength_MatroskaRounding(t *testing.T) {
	var w audioLengthWriter
	for _, line := range []string{
		"1,0.000000,0.021000,K_", "1,0.021000,0.021000,K_", "1,0.043000,0.021000,K_", "1,0.064000,0.021000,K_",
		"1,1.000000,0.021000,K_", // after a gap
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
