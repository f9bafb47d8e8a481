package media

import "testing"

func TestMisplacedPicture(t *testing.T) {
	// 30 fps, then 15, then 30: the average's grid is ~0.04 s.
	vfr := []float64{0, 0.0333, 0.0667, 0.1, 0.1667, 0.2333, 0.3, 0.3333, 0.3667}
	tests := []struct {
		name     string
		src, out []float64
		want     int
	}{
		{"same", vfr, vfr, -1},
		{"container rounding (1 ms)", vfr, []float64{0, 0.033, 0.067, 0.1, 0.167, 0.233, 0.3, 0.333, 0.367}, -1},
		{"the average's grid", vfr, []float64{0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24, 0.28, 0.32}, 3},
		{"two pictures at one time", vfr, []float64{0, 0.0333, 0.0667, 0.1, 0.1667, 0.2333, 0.3, 0.3667, 0.3667}, 7},
		{"source duplicates are not judged", []float64{0, 0, 0.04}, []float64{0, 0.02, 0.04}, -1},
		{"one picture", []float64{0}, []float64{0}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := misplacedPicture(tt.src, tt.out); got != tt.want {
				t.Errorf("misplacedPicture = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAudioTracks_Parse(t *testing.T) {
	var w audioLengthWriter
	in := "1,-0.5,0.021333,6,K_D\n1,0.000000,0.021333,371,K_\n1,0.021333,0.021333,372,K_\n2,0.5,0.1,9,K_\n2,0.5,0.1,9,K_\n1,N/A,0.021333,373,K_\n3,0.0,N/A,1,K_\n"
	_, _ = w.Write([]byte(in[:30])) // lines split across writes
	_, _ = w.Write([]byte(in[30:]))
	if w.err != nil {
		t.Fatal(w.err)
	}
	if len(w.tracks) != 3 {
		t.Fatalf("%d tracks, want 3", len(w.tracks))
	}
	if a := w.tracks[0]; a.Length < 0.0639 || a.Length > 0.064 || a.Span != -1 {
		t.Errorf("stream 1: %+v, want 0.064 s of sound, no span (a packet without timestamp)", a)
	}
	if a := w.tracks[0]; a.Index != 1 || a.FirstPacket != -0.5 || a.Start != 0 || a.Packets != 4 || len(a.lead) != 4 || a.lead[3].size != 373 {
		t.Errorf("stream 1: %+v, want its first packet at -0.5 s (discarded), its first played at 0, 4 packets", a)
	}
	if b := w.tracks[1]; b.Length < 0.199 || b.Length > 0.201 {
		t.Errorf("stream 2: %+v, want 0.2 s of sound", b)
	}
	if c := w.tracks[2]; c.Length != -1 {
		t.Errorf("stream 3: %+v, want its length unknown", c)
	}
	w.parse([]byte("garbage"))
	if w.err == nil {
		t.Error("a malformed line was taken")
	}
}
