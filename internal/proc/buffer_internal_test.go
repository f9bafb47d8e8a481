package proc

import (
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		writes []string
		max    int
		want   string
	}{
		{[]string{"short\n"}, 16, "short"},
		{[]string{"line one\n", "line two\n", "line three\n"}, 16, "line three"}, // starts at a line
		{[]string{strings.Repeat("x", 40) + "\nend"}, 8, "end"},
		{[]string{"abc", "def"}, 4, "cdef"}, // no newline to cut at
	}
	for _, tt := range tests {
		b := newTailBuffer(tt.max)
		for _, w := range tt.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := b.String(); got != tt.want {
			t.Errorf("writes %q max %d: String() = %q, want %q", tt.writes, tt.max, got, tt.want)
		}
	}
}
