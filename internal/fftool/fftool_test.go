package fftool

import "testing"

func TestShownFieldMode(t *testing.T) {
	tests := []struct {
		msg  string
		want byte
	}{
		{"n:  12 pts: 309600 pts_time:3.44 pos: 9012 fmt:yuv420p sar:16/11 s:720x576 i:T iskey:0 type:B", 'T'},
		{"n:   0 pts:      0 pts_time:0 fmt:yuv420p s:320x240 i:B iskey:1 type:I", 'B'},
		{"n:   0 pts:      0 fmt:yuv420p s:320x240 i:P iskey:1", 'P'},
		{"n:   0 pts:      0 fmt:yuv420p s:320x240 iskey:1", 0},
		{"n:   0 i:X", 0},
	}
	for _, tt := range tests {
		if got := ShownFieldMode(tt.msg); got != tt.want {
			t.Errorf("ShownFieldMode(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
