package media

import (
	"slices"
	"testing"
)

func ptsOf(ts ...int64) []picture {
	pics := make([]picture, len(ts))
	for i, t := range ts {
		pics[i].pts = t
	}
	return pics
}

func TestRepairTimes(t *testing.T) {
	tests := []struct {
		name             string
		in               []int64
		ok               bool
		want             []int64 // nil: as in
		nudged, restarts []int
		jump             int64 // repairTimes' jump: 0 for none
		lead             int   // repairTimes' lead: packets without timestamps at the start
		placed           int
	}{
		{"increasing", []int64{0, 40, 80, 120}, true, nil, nil, nil, 0, 0, 0},
		{"variable rate kept", []int64{0, 40, 1000, 1040}, true, nil, nil, nil, 0, 0, 0},
		{"one repeated", []int64{0, 40, 80, 80, 160, 200}, true, []int64{0, 40, 80, 120, 160, 200}, []int{3}, nil, 0, 0, 0},
		{"two repeated", []int64{0, 40, 80, 80, 80, 200}, true, []int64{0, 40, 80, 120, 160, 200}, []int{3, 4}, nil, 0, 0, 0},
		{"one gone back a little", []int64{0, 40, 80, 60, 160}, true, []int64{0, 40, 80, 120, 160}, []int{3}, nil, 0, 0, 0},
		// A restart as ffmpeg's muxer gives it: held at the last timestamp
		// (120) until the later capture's pass it.
		{"restart, held", []int64{0, 40, 80, 120, 120, 120, 120, 120, 120, 120, 120, 120, 120, 130, 170}, true,
			[]int64{0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400, 440, 480, 490, 530}, nil, []int{4}, 0, 0, 0},
		{"restart, gone back", []int64{0, 40, 80, 120, 0, 40, 80, 120, 160, 200, 240, 280, 320, 360},
			true, []int64{0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400, 440, 480, 520}, nil, []int{4}, 0, 0, 0},
		{"jump ahead, a discontinuity", []int64{0, 40, 80, 100000, 100040}, true, []int64{0, 40, 80, 120, 160}, nil, []int{3}, 1000, 0, 0},
		{"jump ahead, a pause", []int64{0, 40, 80, 100000, 100040}, true, nil, nil, nil, 0, 0, 0},
		{"no timestamp", []int64{0, noPTS, 80}, false, nil, nil, nil, 0, 0, 0},
		{"all equal", []int64{5, 5, 5}, false, nil, nil, nil, 0, 0, 0},
		{"one picture", []int64{7}, true, nil, nil, nil, 0, 0, 0},
		// Matroska with negative timestamps as ffmpeg 5.1 reads it: the
		// first pictures' packets have none, the decoder counts them from
		// 0, and the file's own begin at 0 again.
		{name: "leading pictures without timestamps", in: []int64{0, 40, 80, 120, 0, 40, 80, 120}, ok: true,
			want: []int64{-160, -120, -80, -40, 0, 40, 80, 120}, lead: 4, placed: 4},
		{name: "within the slack of their packets", in: []int64{0, 40, 80, 120, 0, 40, 80, 120}, ok: true,
			want: []int64{-160, -120, -80, -40, 0, 40, 80, 120}, lead: 6, placed: 4},
		{name: "a step back far from them is a restart", in: []int64{0, 40, 80, 120, 160, 200, 240, 280, 0, 40, 80}, ok: true,
			want: []int64{0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400}, restarts: []int{8}, lead: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := repairTimes(ptsOf(tt.in...), tt.jump, tt.lead)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			want := tt.want
			if want == nil {
				want = tt.in
			}
			var got []int64
			for _, p := range r.pictures {
				got = append(got, p.pts)
			}
			if !slices.Equal(got, want) || !slices.Equal(r.nudged, tt.nudged) || !slices.Equal(r.restarts, tt.restarts) || r.placed != tt.placed {
				t.Errorf("got %v nudged %v restarts %v placed %d, want %v nudged %v restarts %v placed %d",
					got, r.nudged, r.restarts, r.placed, want, tt.nudged, tt.restarts, tt.placed)
			}
			if r.repaired() != (tt.want != nil) {
				t.Errorf("repaired() = %v", r.repaired())
			}
			// The spans give every picture its time from the decoder's.
			for i, p := range r.pictures {
				s := r.spans[0]
				for _, c := range r.spans {
					if c.first <= i {
						s = c
					}
				}
				at := tt.in[i] + s.base
				if s.linear {
					at = s.base + int64(i-s.first)*s.step
				}
				if at != p.pts {
					t.Errorf("picture %d: the spans give %d, want %d (%+v)", i, at, p.pts, r.spans)
				}
			}
		})
	}
}

func TestRepairTimes_TooManyMended(t *testing.T) {
	var ts []int64
	for i := range 40 {
		ts = append(ts, int64(i/2*40)) // every other picture repeats
	}
	if _, ok := repairTimes(ptsOf(ts...), 0, 0); ok {
		t.Errorf("mended 20 of 40 pictures, want them left untimed (more than %d)", maxRepairs(40))
	}
}

func TestRetimeExpr(t *testing.T) {
	spans := []timeSpan{{}, {first: 4, linear: true, base: 160, step: 40}, {first: 13, base: 360}}
	want := "if(lt(N,4),PTS+0,if(lt(N,13),160+(N-4)*40,PTS+360))"
	if got := retimeExpr(spans); got != want {
		t.Errorf("retimeExpr = %q, want %q", got, want)
	}
	if got := retimeExpr([]timeSpan{{}}); got != "PTS+0" {
		t.Errorf("one span: %q", got)
	}
}
