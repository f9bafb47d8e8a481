package media

import (
	"strings"
	"testing"
)

func TestPictureGrid(t *testing.T) {
	times := func(tb rational, pts ...int64) *pictureScan {
		s := &pictureScan{timeBase: tb}
		for _, p := range pts {
			s.pictures = append(s.pictures, picture{pts: p, dur: 1})
		}
		return s
	}
	every := func(tb rational, first, step int64, n int) *pictureScan {
		pts := make([]int64, n)
		for i := range pts {
			pts[i] = first + int64(i)*step
		}
		return times(tb, pts...)
	}
	for _, tt := range []struct {
		name     string
		src      SourceInfo
		want     timeGrid
		wantGrid bool
	}{
		{"NTSC in MP4", SourceInfo{pictures: every(rational{1, 30000}, 0, 1001, 10)},
			timeGrid{scale: 30000, step: 1001}, true},
		{"NTSC in a transport stream, video after audio", SourceInfo{StartTime: 2.6245, Video: VideoStream{StreamInfo: StreamInfo{StartTime: 2.6345222}},
			pictures: every(rational{1, 90000}, 237105, 3003, 10)}, timeGrid{scale: 90000, step: 3003, offset: 902}, true},
		{"B-frames: presentation order is not file order", SourceInfo{pictures: times(rational{1, 24000}, 0, 1001, 2002, 3003, 5005, 4004)},
			timeGrid{scale: 24000, step: 1001}, true},
		{"a frame duration in a time base of its own", SourceInfo{pictures: every(rational{1001, 30000}, 1, 1, 10)},
			timeGrid{scale: 30000, step: 1001}, true},
		{"a gap of whole frames", SourceInfo{pictures: times(rational{1, 30000}, 0, 1001, 2002, 6006, 7007)},
			timeGrid{scale: 30000, step: 1001}, true},
		{"25 fps: whole milliseconds", SourceInfo{pictures: every(rational{1, 12800}, 0, 512, 10)}, timeGrid{}, false},
		{"25 fps, the video 10.5 ms late", SourceInfo{Video: VideoStream{StreamInfo: StreamInfo{StartTime: 0.0105}}, pictures: every(rational{1, 12800}, 0, 512, 10)},
			timeGrid{scale: 12800, step: 512, offset: 134}, true},
		{"Matroska", SourceInfo{pictures: times(rational{1, 1000}, 0, 33, 67, 100)}, timeGrid{}, false},
		{"variable rate: no grid coarser than 2 ms", SourceInfo{pictures: times(rational{1, 90000}, 0, 3757, 6838, 9919)}, timeGrid{}, false},
		{"one picture", SourceInfo{pictures: times(rational{1, 30000}, 0)}, timeGrid{}, false},
		{"no pictures scanned", SourceInfo{}, timeGrid{}, false},
		{"untimed at a stated rate", SourceInfo{Video: VideoStream{AvgFrameRate: "30000/1001", FPS: 30000.0 / 1001},
			pictures: times(rational{1, 25}, noPTS, noPTS, noPTS)}, timeGrid{scale: 30000, step: 1001}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, ok := pictureGrid(tt.src)
			if ok != tt.wantGrid || g != tt.want {
				t.Errorf("pictureGrid = %+v, %v; want %+v, %v", g, ok, tt.want, tt.wantGrid)
			}
		})
	}
}

func TestTimeGridSetts(t *testing.T) {
	got := timeGrid{scale: 90000, step: 3003, offset: 902}.setts()
	want := `setts=pts=902+round((PTS-902)/3003)*3003:dts=902+round((DTS-902)/3003)*3003:duration=max(1\,round(DURATION/3003))*3003`
	if got != want {
		t.Errorf("setts = %s\nwant    %s", got, want)
	}
	if strings.Count(got, ",") != strings.Count(got, `\,`) {
		t.Errorf("setts %s has an unescaped comma: it would end the -bsf list", got)
	}
}
