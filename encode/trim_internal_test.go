package encode

import (
	"errors"
	"strings"
	"testing"
)

func TestTrimMiscount(t *testing.T) {
	trim := Trim{Start: 10, Frames: 5}
	tests := []struct {
		kept    int64
		invalid bool // wraps ErrInvalidInput
		want    string
	}{
		{0, true, "the chunk decodes to at most 10 pictures, none kept; the trim asks for pictures 10..14"},
		{3, true, "the chunk decodes to 13 pictures; the trim asks for pictures 10..14"},
		{7, false, "the shard holds 7 pictures; the trim asks for pictures 10..14"},
	}
	for _, tt := range tests {
		err := trim.miscount(tt.kept)
		if errors.Is(err, ErrInvalidInput) != tt.invalid {
			t.Errorf("miscount(%d) = %v: ErrInvalidInput %v, want %v", tt.kept, err, !tt.invalid, tt.invalid)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("miscount(%d) = %q, want %q in it", tt.kept, err, tt.want)
		}
	}
	if got, want := trim.filter(), "trim=start_frame=10:end_frame=15,setpts=PTS-STARTPTS,scale=iw:ih"; got != want {
		t.Errorf("filter() = %q, want %q", got, want)
	}
}
