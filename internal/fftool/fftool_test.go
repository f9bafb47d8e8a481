package fftool

import (
	"maps"
	"testing"
)

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

func TestShownColours(t *testing.T) {
	tests := []struct {
		msg  string
		want map[string]string
	}{
		{"color_range:tv color_space:bt709 color_primaries:bt709 color_trc:bt709",
			map[string]string{"color_range": "tv", "color_space": "bt709", "color_primaries": "bt709", "color_trc": "bt709"}},
		{"color_range:pc1280x720, 4:2:2 8 bits, MBAFF=0 ACT=0", map[string]string{"color_range": "pc"}},
		{" color_space:bt2020nc color_primaries:bt2020Profile cid 1273.", map[string]string{"color_space": "bt2020nc", "color_primaries": "bt2020"}},
		{" color_trc:bt2020-10x", map[string]string{"color_trc": "bt2020-10"}},
		{" color_trc:smpte2084", map[string]string{"color_trc": "smpte2084"}},
		{" color_space:somefuturename", map[string]string{"color_space": "somefuturename"}},
		{"n:   0 pts:      0 fmt:yuv420p", map[string]string{}},
	}
	for _, tt := range tests {
		got := map[string]string{}
		ShownColours(tt.msg, func(p, v string) { got[p] = v })
		if !maps.Equal(got, tt.want) {
			t.Errorf("ShownColours(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}
