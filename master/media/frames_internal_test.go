package media

import "testing"

func TestPictureScanTimedAs(t *testing.T) {
	src := rational{1, 25} // the source's pictures, 40 ms apart
	want := []picture{{pts: 2}, {pts: 3}, {pts: 4}, {pts: 5}}
	ms := func(ts ...int64) *pictureScan { // a chunk decoded from Matroska
		s := &pictureScan{timeBase: rational{1, 1000}}
		for _, t := range ts {
			s.pictures = append(s.pictures, picture{pts: t})
		}
		return s
	}
	tests := []struct {
		name string
		scan *pictureScan
		skip int
		ok   bool
	}{
		{"the same spacing, another start", ms(500, 540, 580, 620), 0, true},
		{"after a lead that is dropped", ms(0, 40, 80, 120, 160), 1, true},
		{"rounded to the millisecond", ms(0, 41, 79, 121), 0, true},
		// +genpts on H.264 in AVI: ticks 1, 4, 4, 5 for pictures 2, 3, 4, 5.
		{"times guessed in file order", ms(40, 160, 160, 200), 0, false},
		{"one picture a frame late", ms(0, 40, 120, 160), 0, false},
		{"no timestamp", ms(0, noPTS, 80, 120), 0, false},
		{"fewer pictures than wanted", ms(0, 40, 80), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.scan.timedAs(tt.skip, want, src); got != tt.ok {
				t.Errorf("timedAs = %v, want %v", got, tt.ok)
			}
		})
	}
}
