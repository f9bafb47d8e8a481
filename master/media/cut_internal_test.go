package media

import (
	"fmt"
	"testing"
)

// fakeStream builds n pictures at 25 fps (time base 1/25: pts = index)
// and their packets in decode order, I0 P3 B1 B2 P6 B4 B5 ..., with
// keyframes where key says.
func fakeStream(n int, key func(i int) bool) ([]picture, packetTimeline) {
	pics := make([]picture, n)
	for i := range pics {
		pics[i] = picture{pts: int64(i), dur: 1}
	}
	var tl packetTimeline
	add := func(pts int) {
		if pts >= n {
			return
		}
		if key(pts) {
			tl.keys = append(tl.keys, keyframe{packet: int64(len(tl.pts)), pts: int64(pts)})
		}
		tl.pts = append(tl.pts, int64(pts))
	}
	add(0)
	for i := 3; i < n+2; i += 3 {
		add(i)
		add(i - 2)
		add(i - 1)
	}
	return pics, tl
}

func TestPlanCuts(t *testing.T) {
	tb := rational{1, 25}
	every := func(k int) func(int) bool { return func(i int) bool { return i%k == 0 } }
	tests := []struct {
		name    string
		n       int
		key     func(int) bool
		noPkts  bool
		segment float64
		want    string // first:end/form per cut
		fields  []fieldRun
	}{
		{"keyframes on the grid", 150, every(30), false, 1.2,
			"0:30/copy 30:60/copy 60:90/copy 90:120/copy 120:150/copy", nil},
		{"keyframes between targets", 100, every(50), false, 1,
			"0:25/copy 25:50/copy 50:75/copy 75:100/copy", nil},
		{"one keyframe", 100, every(1000), false, 1,
			"0:25/copy 25:50/copy 50:75/lossless 75:100/lossless", nil},
		{"no packet timeline", 50, every(10), true, 1, "0:25/lossless 25:50/lossless", nil},
		{"short tail merged", 105, every(25), false, 1, "0:25/copy 25:50/copy 50:75/copy 75:105/copy", nil},
		{"tail kept", 110, every(25), false, 1, "0:25/copy 25:50/copy 50:75/copy 75:100/copy 100:110/copy", nil},
		// Cut where interlaced pictures begin; the chunk after is no copy
		// from a progressive keyframe: its worker would code it
		// progressive.
		{"field mode switch", 100, every(25), false, 1,
			"0:25/copy 25:40/copy 40:65/lossless 65:90/copy 90:100/copy", []fieldRun{{'P', 0}, {'T', 40}}},
		{"field mode switch at a keyframe", 100, every(25), false, 1,
			"0:25/copy 25:50/copy 50:75/copy 75:100/copy", []fieldRun{{'P', 0}, {'T', 50}}},
		{"field order switch", 100, every(25), false, 1,
			"0:25/copy 25:50/copy 50:75/copy 75:100/copy", []fieldRun{{'T', 0}, {'B', 50}}},
		{"short field run kept in its chunk", 100, every(25), false, 1,
			"0:25/copy 25:50/copy 50:75/copy 75:100/copy", []fieldRun{{'P', 0}, {'T', 30}, {'P', 33}}},
		{"short first run cut", 100, every(25), false, 1,
			"0:2/copy 2:25/lossless 25:50/copy 50:75/copy 75:100/copy", []fieldRun{{'P', 0}, {'T', 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pics, pkts := fakeStream(tt.n, tt.key)
			if tt.noPkts {
				pkts = packetTimeline{}
			}
			cuts := planCuts(pics, tb, pkts, tt.fields, tt.segment)
			got := ""
			for i, c := range cuts {
				form := "lossless"
				if c.copy {
					form = "copy"
					if c.startPacket > c.endPacket {
						t.Errorf("cut %d: packets %d..%d", i, c.startPacket, c.endPacket)
					}
				}
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%d:%d/%s", c.first, c.end, form)
			}
			if got != tt.want {
				t.Errorf("cuts %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestLastPacketBefore: a chunk's copy runs on until every picture before
// its end has been decoded, the next GOP's leading pictures included.
func TestLastPacketBefore(t *testing.T) {
	pics := make([]picture, 9)
	for i := range pics {
		pics[i] = picture{pts: int64(i)}
	}
	// Decode order: I0 P3 B1 B2 I6 B4 B5 P8 B7 (open GOP: B4, B5 display
	// before I6 and are decoded after it).
	pts := []int64{0, 3, 1, 2, 6, 4, 5, 8, 7}
	last := lastPacketBefore(pics, pts)
	want := []int64{0, 2, 3, 3, 5, 6, 6, 8, 8}
	for f := range want {
		if last[f] != want[f] {
			t.Errorf("pictures 0..%d need packets up to %d, want %d", f, last[f], want[f])
		}
	}
	if lastPacketBefore(pics, nil) != nil {
		t.Error("no packets: want nil")
	}
}
