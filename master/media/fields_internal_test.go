package media

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestFieldCuts(t *testing.T) {
	pics, _ := fakeStream(100, func(int) bool { return false }) // 25 fps
	tb := rational{1, 25}
	tests := []struct {
		name string
		runs []fieldRun
		want []int
	}{
		{"none known", nil, nil},
		{"one mode", []fieldRun{{'T', 0}}, nil},
		{"a switch", []fieldRun{{'P', 0}, {'T', 40}}, []int{40}},
		{"and back", []fieldRun{{'P', 0}, {'T', 40}, {'P', 70}}, []int{40, 70}},
		{"field order", []fieldRun{{'T', 0}, {'B', 50}}, []int{50}},
		// 0.2 s of a 1 s segment is below minFieldRun: coded as the
		// pictures before, and the mode after is theirs again.
		{"short run", []fieldRun{{'P', 0}, {'T', 40}, {'P', 45}}, nil},
		{"short run, then another mode", []fieldRun{{'P', 0}, {'T', 40}, {'B', 45}}, []int{45}},
		{"short last run", []fieldRun{{'P', 0}, {'T', 95}}, nil},
		{"short first run", []fieldRun{{'P', 0}, {'T', 2}}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldCuts(tt.runs, pics, tb, 1); !slices.Equal(got, tt.want) {
				t.Errorf("fieldCuts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckFields(t *testing.T) {
	runs := []fieldRun{{'P', 0}, {'T', 10}}
	frames := func(first int64, modes string) []FrameQuality {
		var f []FrameQuality
		for i := range len(modes) {
			mode := modes[i]
			if mode == '?' {
				mode = 0
			}
			f = append(f, FrameQuality{Frame: first + int64(i), Fields: mode})
		}
		return f
	}
	tests := []struct {
		name  string
		first int64
		got   []FrameQuality
		want  *FieldCheck
	}{
		{"alike", 8, frames(0, "PPTT"), nil},
		{"not known", 8, frames(0, "??BB"), &FieldCheck{Differ: 2, First: 10, Source: "interlaced (top field first)", Output: "interlaced (bottom field first)"}},
		{"coded progressive", 8, frames(0, "PPPP"), &FieldCheck{Differ: 2, First: 10, Source: "interlaced (top field first)", Output: "progressive"}},
		// The whole output's measures count from the source's first picture.
		{"sampled, from 0", 0, frames(9, "TP"), &FieldCheck{Differ: 2, First: 9, Source: "progressive", Output: "interlaced (top field first)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkFields(runs, tt.first, tt.got)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("checkFields = %+v, want %+v", got, tt.want)
			}
		})
	}
	if got := checkFields(nil, 0, frames(0, "TT")); got != nil {
		t.Errorf("no source modes known: %+v, want nil", got)
	}
}

// A live probe hands out only the pictures whose field mode its log has
// given too: the two come from ffmpeg apart.
func TestProbing_PicturesWaitForFields(t *testing.T) {
	p := &Probing{grew: make(chan struct{}), done: make(chan struct{})}
	_, _ = p.Write([]byte("#tb 0: 1/25\n0, 0, 0, 1, 100, 00000000000000000000000000000000\n0, 1, 1, 1, 100, 00000000000000000000000000000001\n"))
	if pics, _, _, _, _ := p.pictures(); len(pics) != 0 {
		t.Fatalf("%d pictures handed out before their field modes", len(pics))
	}
	_, _, _, _, grew := p.pictures()
	p.logged('P')
	select {
	case <-grew:
	default:
		t.Fatal("a picture became known whole, and no waiter was told")
	}
	p.logged('T')
	p.logged('T') // its picture is not decoded yet
	pics, fields, _, _, _ := p.pictures()
	if len(pics) != 2 || !slices.Equal(fields, []fieldRun{{'P', 0}, {'T', 1}}) {
		t.Errorf("pictures %d, fields %v; want 2 and P from 0, T from 1", len(pics), fields)
	}
	_, _ = p.Write([]byte("0, 2, 2, 1, 100, 00000000000000000000000000000002\n"))
	if pics, _, _, _, _ := p.pictures(); len(pics) != 3 {
		t.Errorf("%d pictures, want 3", len(pics))
	}
}

// The field modes are part of what a job keeps of its source.
func TestCache_Fields(t *testing.T) {
	src := SourceInfo{Path: "/src.mkv",
		packets:  &packetScan{timeBase: rational{1, 25}},
		pictures: &pictureScan{timeBase: rational{1, 25}, log: decodeLog{fields: []fieldRun{{'P', 0}, {'B', 40}}}}}
	key := SourceKey{Path: src.Path, Size: 1, ModTime: time.Unix(1, 0)}
	path := filepath.Join(t.TempDir(), "source.gob")
	if err := SaveSource(path, key, src); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSource(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.pictures.log.fields, src.pictures.log.fields) {
		t.Errorf("fields %v, saved %v", got.pictures.log.fields, src.pictures.log.fields)
	}
}
