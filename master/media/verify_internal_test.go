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
