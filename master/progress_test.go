package master

import (
	"strings"
	"testing"
	"time"
)

func TestProgressPlainLines(t *testing.T) {
	var out strings.Builder
	p := NewProgress(&out, 4, 40)
	start := p.start
	p.now = func() time.Time { return start.Add(5 * time.Second) }
	p.Skip(1, 10)
	p.ChunkDone(1, 10, "w1") // 10 s of video in 5 s: 2x; 20 s left: ETA 0:10
	p.Logf("retrying chunk %d", 2)
	p.Finish()
	got := out.String()
	for _, want := range []string{
		"resuming: 1 of 4 chunks already stored: 1/4 chunks\n",
		"chunk 1 done on w1: 2/4 chunks, 2.00x realtime, ETA 0:10\n",
		"retrying chunk 2\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\r") {
		t.Errorf("plain output has a carriage return:\n%q", got)
	}
}

func TestProgressBarOnTerminal(t *testing.T) {
	var out strings.Builder
	p := NewProgress(&out, 2, 20)
	p.tty = true
	p.ChunkDone(0, 10, "w1")
	p.Logf("a line")
	p.ChunkDone(1, 10, "w2")
	p.Finish()
	got := out.String()
	if !strings.Contains(got, "\r\033[K[###############---------------] 1/2 chunks") ||
		!strings.Contains(got, "\r\033[Ka line\n") ||
		!strings.Contains(got, "[##############################] 2/2 chunks") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar output:\n%q", got)
	}
}

func TestFormatClock(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42 * time.Second:                "0:42",
		2*time.Minute + 5*time.Second:   "2:05",
		time.Hour + 2*time.Minute + 3e9: "1:02:03",
		1500 * time.Millisecond:         "0:02",
	} {
		if got := formatClock(d); got != want {
			t.Errorf("formatClock(%v) = %s, want %s", d, got, want)
		}
	}
}

// TestProgressEstimatedTotal: while the split still cuts, the total is a
// guess from the video's length, shown as one; past it, only the count;
// once the split knows the total, it is shown as it is.
func TestProgressEstimatedTotal(t *testing.T) {
	var out strings.Builder
	p := NewProgress(&out, 2, 0)
	p.estimated = true
	p.ChunkDone(0, 0, "w1")
	p.ChunkDone(1, 0, "w1")
	p.ChunkDone(2, 0, "w1")
	p.SetTotal(4)
	p.ChunkDone(3, 0, "w1")
	got := out.String()
	for _, want := range []string{"chunk 0 done on w1: 1/~2 chunks\n", "chunk 2 done on w1: 3 chunks\n", "chunk 3 done on w1: 4/4 chunks\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
