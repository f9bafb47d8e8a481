package proc

import (
	"bytes"
	"sync"
)

// tailBuffer is an io.Writer that keeps only the last max bytes written.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func newTailBuffer(max int) *tailBuffer {
	return &tailBuffer{buf: make([]byte, 0, max), max: max}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.truncated = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[over:])]
		t.truncated = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the kept bytes, trimmed, starting at a line boundary when
// earlier output was dropped.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if t.truncated {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(bytes.TrimSpace(b))
}

// lineFilter hands each line written to it to keep (Cmd.StderrLine) and
// writes what keep returns, with a newline, to to.
type lineFilter struct {
	keep    func(line []byte) []byte
	to      *tailBuffer
	partial []byte // a line not yet ended, at most StderrTailSize bytes
}

func (f *lineFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		p = p[len(seg):]
		for room := StderrTailSize - len(f.partial); len(seg) >= room; room = StderrTailSize {
			f.partial = append(f.partial, seg[:room]...)
			seg = seg[room:]
			f.flush()
		}
		f.partial = append(f.partial, seg...)
		if i >= 0 {
			p = p[1:] // the line end
			f.flush()
		}
	}
	return n, nil
}

// flush hands the line held so far to keep.
func (f *lineFilter) flush() {
	line := f.partial
	f.partial = f.partial[:0]
	if len(line) == 0 {
		return
	}
	if kept := f.keep(line); len(kept) > 0 {
		_, _ = f.to.Write(kept)
		_, _ = f.to.Write([]byte{'\n'})
	}
}

// LimitedBuffer collects up to a fixed number of bytes and silently drops
// the rest, so a chatty program never blocks on a full pipe; Overflowed
// reports the drop. Make one with NewLimitedBuffer. It is meant as
// Cmd.Stdout and is not safe for concurrent writers.
//
// It deliberately has no ReadFrom (an embedded bytes.Buffer would promote
// one, and io.Copy would use it to bypass the limit).
type LimitedBuffer struct {
	buf        bytes.Buffer
	max        int
	overflowed bool
}

// NewLimitedBuffer returns a LimitedBuffer that keeps at most max bytes.
func NewLimitedBuffer(max int) *LimitedBuffer {
	return &LimitedBuffer{max: max}
}

// Write keeps what fits and always reports len(p), nil.
func (l *LimitedBuffer) Write(p []byte) (int, error) {
	room := l.max - l.buf.Len()
	if len(p) > room {
		l.overflowed = true
		l.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.buf.Write(p)
}

// Overflowed reports whether bytes were dropped.
func (l *LimitedBuffer) Overflowed() bool { return l.overflowed }

// Bytes returns the kept bytes; they alias the buffer.
func (l *LimitedBuffer) Bytes() []byte { return l.buf.Bytes() }

// String returns the kept bytes as a string.
func (l *LimitedBuffer) String() string { return l.buf.String() }

// Len returns the number of kept bytes.
func (l *LimitedBuffer) Len() int { return l.buf.Len() }
