package media

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/internal/fftool"
)

func TestSplitLogLine(t *testing.T) {
	tests := []struct{ line, component, level, msg string }{
		{"[h264 @ 0x55658cad62c0] [error] co located POCs unavailable", "h264", "error", "co located POCs unavailable"},
		{"[warning] in.ts: corrupt decoded frame in stream 0", "", "warning", "in.ts: corrupt decoded frame in stream 0"},
		{"[graph 0 input from stream 0:0 @ 0x5] [verbose] w:320 h:240 pixfmt:yuv420p", "graph 0 input from stream 0:0", "verbose", "w:320 h:240 pixfmt:yuv420p"},
		{"no level at all", "", "", "no level at all"},
		{"[", "", "", "["},
	}
	for _, tt := range tests {
		c, l, m := fftool.SplitLogLine([]byte(tt.line))
		if c != tt.component || l != tt.level || m != tt.msg {
			t.Errorf("SplitLogLine(%q) = %q, %q, %q; want %q, %q, %q", tt.line, c, l, m, tt.component, tt.level, tt.msg)
		}
	}
}

// feed hands lines to a decodeLog and returns what it keeps.
func feed(l *decodeLog, lines ...string) []string {
	var kept []string
	for _, s := range lines {
		if k := l.line([]byte(s)); k != nil {
			kept = append(kept, string(k))
		}
	}
	return kept
}

func TestDecodeLog(t *testing.T) {
	graph := func(w string) string {
		return "[graph 0 input from stream 0:0 @ 0x1] [verbose] " + w + " tb:1/90000 fr:25/1"
	}
	tests := []struct {
		name     string
		lines    []string
		sizeErr  bool
		warnings []string // each a substring of one warning, in order
		kept     []string
	}{
		{name: "one format", lines: []string{graph("w:320 h:240 pixfmt:yuv420p sar:1/1"), graph("w:320 h:240 pixfmt:yuv420p sar:0/1")}},
		{name: "size change", lines: []string{graph("w:320 h:240 pixfmt:yuv420p sar:1/1"), graph("w:480 h:270 pixfmt:yuv420p sar:1/1"),
			graph("w:320 h:240 pixfmt:yuv420p sar:1/1")}, sizeErr: true},
		{name: "size change, shape kept", lines: []string{graph("w:1440 h:1080 pixfmt:yuv420p sar:4/3"), graph("w:1920 h:1080 pixfmt:yuv420p sar:1/1")},
			warnings: []string{"picture size changes midway (1440x1080, then 1920x1080): the later pictures are scaled to 1440x1080, their shape kept"}},
		{name: "format change", lines: []string{graph("w:320 h:240 pixfmt:yuv420p sar:1/1"), graph("w:320 h:240 pixfmt:yuv444p sar:1/1")},
			warnings: []string{"pixel format changes midway (yuv420p, then yuv444p)"}},
		{name: "aspect change", lines: []string{graph("w:720 h:576 pixfmt:yuv420p sar:16/15"), graph("w:720 h:576 pixfmt:yuv420p sar:64/45")},
			warnings: []string{"pixel aspect changes midway (16:15, then 64:45): the output keeps 16:15"}},
		{name: "damage", lines: []string{
			"[warning] in.ts: corrupt input packet in stream 0",
			"[h264 @ 0x2] [error] co located POCs unavailable",
			"[warning] in.ts: corrupt decoded frame in stream 0",
			"[h264 @ 0x2] [error] mmco: unref short failure",
			"[info] Stream mapping:",
		}, warnings: []string{`damaged source: 1 of the video's pictures decode with errors ffmpeg conceals (first: "h264: co located POCs unavailable")`},
			kept: []string{"[h264] co located POCs unavailable", "[h264] mmco: unref short failure"}},
		{name: "a packet lost", lines: []string{
			"[mjpeg @ 0x3] [error] overread 8",
			"[error] Error while decoding stream #0:0: Invalid data found when processing input",
		}, warnings: []string{`damaged source: 1 of the video's packets do not decode at all (first: "mjpeg: overread 8"), and 0 pictures`},
			kept: []string{"[mjpeg] overread 8", "Error while decoding stream #0:0: Invalid data found when processing input"}},
		{name: "packets only", lines: []string{"[warning] in.ts: corrupt input packet in stream 0", "[warning] in.ts: corrupt input packet in stream 0"},
			warnings: []string{"2 of the video's packets are flagged corrupt"}},
		{name: "fatal kept", lines: []string{"[fatal] in.mp4: No such file or directory"}, kept: []string{"in.mp4: No such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l decodeLog
			stopped := 0
			l.onSizeChange = func() { stopped++ }
			kept := feed(&l, tt.lines...)
			err := l.sizeChange()
			if tt.sizeErr != (err != nil) || err != nil && !errors.Is(err, ErrSizeChange) {
				t.Errorf("sizeChange() = %v, want an error: %v", err, tt.sizeErr)
			}
			if want := map[bool]int{true: 1}[tt.sizeErr]; stopped != want {
				t.Errorf("onSizeChange called %d times, want %d", stopped, want)
			}
			w := l.warnings()
			if len(w) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d like %q", w, len(tt.warnings), tt.warnings)
			}
			for i := range w {
				if !strings.Contains(w[i], tt.warnings[i]) {
					t.Errorf("warning %q does not say %q", w[i], tt.warnings[i])
				}
			}
			if !slices.Equal(kept, tt.kept) {
				t.Errorf("kept %q, want %q", kept, tt.kept)
			}
		})
	}
}

// TestDecodeLog_PTS: showinfo's picture lines give each picture's
// timestamp as the decoder gave it, in order, across filter graphs rebuilt
// midway (a new instance address); its other lines, and other filters'
// info lines, are not pictures.
func TestDecodeLog_PTS(t *testing.T) {
	var l decodeLog
	for _, line := range []string{
		"[Parsed_showinfo_0 @ 0x55d0] [info] config in time_base: 1/90000, frame_rate: 25/1",
		"[Parsed_showinfo_0 @ 0x55d0] [info] n:   0 pts: 392400 pts_time:4.36    pos:      564 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:1 type:I ",
		"[Parsed_showinfo_0 @ 0x55d0] [info]   side data - User Data Unregistered:",
		"[Parsed_showinfo_0 @ 0x55d0] [info] color_range:unknown color_space:unknown color_primaries:unknown color_trc:unknown",
		"[Parsed_showinfo_0 @ 0x77aa] [info] n:   0 pts:126000 pts_time:1.4     pos:       -1 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:1 type:I ",
		"[Parsed_showinfo_0 @ 0x77aa] [info] n:   1 pts:  NOPTS pts_time:NOPTS   pos:     9012 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:0 type:P ",
		"[Parsed_metadata_2 @ 0x1] [info] frame:1 pts:5",
		"[info] Stream mapping:",
	} {
		l.line([]byte(line))
	}
	if want := []int64{392400, 126000, noPTS}; !slices.Equal(l.pts, want) {
		t.Errorf("pts = %v, want %v", l.pts, want)
	}
}

// TestDecodeLog_ChangesOnlyPicturesTell: a change of pixel aspect, of
// colour description or from progressive to interlaced pictures sets up
// no filter graph anew; showinfo's lines for the pictures tell of it: the
// first two are warned of with where they are, the field modes kept for
// the split.
func TestDecodeLog_ChangesOnlyPicturesTell(t *testing.T) {
	var l decodeLog
	picture := func(n int, sar string) string {
		fields := "T" // top field first
		if n < 2 {
			fields = "P"
		}
		return fmt.Sprintf("[Parsed_showinfo_0 @ 0x1] [info] n:%4d pts:%7d pts_time:0 pos: 1 fmt:yuv420p sar:%s s:720x576 i:%s iskey:1 type:I ", n, n*3600, sar, fields)
	}
	colour := func(c string) string {
		return "[Parsed_showinfo_0 @ 0x1] [info] color_range:tv color_space:" + c + " color_primaries:" + c + " color_trc:bt709"
	}
	l.line([]byte("[graph 0 input from stream 0:0 @ 0x2] [verbose] w:720 h:576 pixfmt:yuv420p tb:1/90000 fr:25/1 sar:16/11"))
	for n := range 6 {
		sar, c := "16/11", "bt709"
		if n >= 3 {
			sar = "12/11"
		}
		if n >= 4 {
			c = "bt470bg"
		}
		l.line([]byte(picture(n, sar)))
		l.line([]byte(colour(c)))
	}
	if err := l.sizeChange(); err != nil {
		t.Errorf("sizeChange = %v, want none: the size stays", err)
	}
	want := []string{
		"video pixel aspect changes midway (16:11, then 12:11): the output keeps 16:11 throughout",
		"video colour description changes midway (range:tv space:bt709 primaries:bt709 trc:bt709, then range:tv space:bt470bg primaries:bt470bg trc:bt709; first at picture 4)",
	}
	// The split cuts where the field mode switches, so there is nothing
	// to warn of; the runs say where.
	if want := []fieldRun{{'P', 0}, {'T', 2}}; !slices.Equal(l.fields, want) {
		t.Errorf("fields = %v, want %v", l.fields, want)
	}
	got := l.warnings()
	if len(got) != len(want) {
		t.Fatalf("warnings = %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("warning %d = %q, want it to start %q", i, got[i], w)
		}
	}
}

// TestDecodeLog_DecoderLinesInsideShowinfo: a frame-threaded decoder's
// message that lands between showinfo's writes (as DNxHD's per-picture
// "1280x720, 4:2:2 8 bits, MBAFF=0 ACT=0" does) is glued to the property
// before it and ends the line; the properties after it come on a line of
// their own. The pictures' colours read the same, and a real change is
// still found where it is.
func TestDecodeLog_DecoderLinesInsideShowinfo(t *testing.T) {
	const (
		info  = "[Parsed_showinfo_0 @ 0x1] [info] "
		glued = "1280x720, 4:2:2 8 bits, MBAFF=0 ACT=0"
	)
	logs := map[string][]string{
		"whole": {info + "color_range:tv color_space:bt709 color_primaries:unknown color_trc:unknown"},
		"after range": {
			info + "color_range:tv" + glued,
			info + " color_space:bt709 color_primaries:unknown color_trc:unknown",
		},
		"after primaries": {
			info + "color_range:tv color_space:bt709 color_primaries:unknown" + glued,
			info + " color_trc:unknown",
		},
		"after trc":                {info + "color_range:tv color_space:bt709 color_primaries:unknown color_trc:unknown" + glued},
		"after the picture's line": nil, // see below
	}
	for name, colourLines := range logs {
		t.Run(name, func(t *testing.T) {
			var l decodeLog
			for n := range 6 {
				line := fmt.Sprintf(info+"n:%4d pts:%7d pts_time:0 pos: 1 fmt:yuv422p sar:1/1 s:1280x720 i:P iskey:1 type:I ", n, n)
				lines := logs["whole"]
				if n == 2 || n == 3 {
					if colourLines == nil {
						line += glued
					} else {
						lines = colourLines
					}
				}
				if n == 5 { // a real change, in pieces
					lines = []string{info + "color_range:pc" + glued, info + " color_space:bt709 color_primaries:unknown color_trc:unknown"}
				}
				l.line([]byte(line))
				for _, c := range lines {
					l.line([]byte(c))
				}
			}
			want := []pictureColour{
				{"range:tv space:bt709 primaries:unknown trc:unknown", 0},
				{"range:pc space:bt709 primaries:unknown trc:unknown", 5},
			}
			if !slices.Equal(l.colours, want) {
				t.Errorf("colours = %+v, want %+v", l.colours, want)
			}
			if len(l.pts) != 6 || l.pts[3] != 3 {
				t.Errorf("pts = %v, want 0 to 5", l.pts)
			}
			if len(l.formats) != 1 {
				t.Errorf("formats = %v, want one", l.formats)
			}
		})
	}
}
