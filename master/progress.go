package master

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress shows a job's progress: a bar redrawn in place on a terminal,
// plain log lines otherwise. It is safe for concurrent use.
type Progress struct {
	w          io.Writer
	tty        bool
	now        func() time.Time
	totalMedia float64 // seconds of video in the job

	mu        sync.Mutex // guards the fields below
	total     int        // chunks in the job, as far as the split knows
	estimated bool       // total is a guess from the video's length, until SetTotal
	start     time.Time
	done      int
	doneMedia float64
	drawn     bool // a bar is on the current line
}

// NewProgress reports on w for a job of total chunks holding totalMedia
// seconds of video. A bar is drawn only when w is a terminal.
func NewProgress(w io.Writer, total int, totalMedia float64) *Progress {
	return &Progress{w: w, tty: isTerminal(w), now: time.Now, total: total, totalMedia: totalMedia, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// SetTotal sets the job's chunk count, once the split knows it.
func (p *Progress) SetTotal(chunks int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.estimated = chunks, false
}

// Skip counts chunks that were already done (a resumed job) without
// counting them towards the speed.
func (p *Progress) Skip(chunks int, media float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += chunks
	p.totalMedia -= media
	p.draw(fmt.Sprintf("resuming: %d of %d chunks already stored", chunks, p.total))
}

// ChunkDone records one finished chunk of media seconds.
func (p *Progress) ChunkDone(index int, media float64, worker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.doneMedia += media
	p.draw(fmt.Sprintf("chunk %d done on %s", index, worker))
}

// Logf prints a line above the bar (or as a plain line).
func (p *Progress) Logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.tty {
		p.bar()
	}
}

// Finish leaves the bar's last state on its own line.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func (p *Progress) draw(event string) {
	if p.tty {
		p.bar()
		return
	}
	fmt.Fprintf(p.w, "%s: %s\n", event, p.status())
}

func (p *Progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *Progress) bar() {
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = width * min(p.done, p.total) / p.total
	}
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %s", strings.Repeat("#", filled), strings.Repeat("-", width-filled), p.status())
	p.drawn = true
}

// status is "12/40 chunks, 3.2x realtime, ETA 0:42".
func (p *Progress) status() string {
	s := fmt.Sprintf("%d/%d chunks", p.done, p.total)
	switch {
	case p.estimated && p.done >= p.total: // the guess was short: the split goes on
		s = fmt.Sprintf("%d chunks", p.done)
	case p.estimated:
		s = fmt.Sprintf("%d/~%d chunks", p.done, p.total)
	}
	elapsed := p.now().Sub(p.start).Seconds()
	if p.doneMedia <= 0 || elapsed <= 0 {
		return s
	}
	speed := p.doneMedia / elapsed
	s += fmt.Sprintf(", %.2fx realtime", speed)
	if remaining := p.totalMedia - p.doneMedia; remaining > 0 && p.done < p.total {
		s += ", ETA " + formatClock(time.Duration(remaining/speed*float64(time.Second)))
	}
	return s
}

// formatClock renders d as m:ss or h:mm:ss.
func formatClock(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
