// Package framehash reads what ffmpeg's framehash muxer writes
// (-f framehash -hash murmur3): a time base line per stream, then one line
// per picture with its timestamps and a hash of its decoded pixels. The
// master and the worker compare pictures by these hashes, so both read
// them here.
package framehash

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Size is the length of one hash (murmur3, 128 bits).
const Size = 16

// Hash is one picture's hash.
type Hash [Size]byte

// Kind says what a line holds.
type Kind int

// Line kinds.
const (
	// Other is a comment or an empty line.
	Other Kind = iota
	// TimeBase is stream 0's time base: Line.TimeBase.
	TimeBase
	// Picture is one picture: Line.PTS, Line.Duration and Line.Hash.
	Picture
)

// Line is one parsed line.
type Line struct {
	Kind Kind
	// TimeBase is num/den seconds, num > 0.
	TimeBase [2]int64
	// PTS and Duration are in the time base's ticks.
	PTS, Duration int64
	Hash          Hash
}

// Parse reads one line: "#tb 0: 1/12800" or
// "0,        512,        512,      512,   115200, 03bf8992a2e50253f26be3276e65856c".
func Parse(line []byte) (Line, error) {
	text := strings.TrimSpace(string(line))
	if text == "" {
		return Line{}, nil
	}
	if rest, ok := strings.CutPrefix(text, "#tb 0:"); ok {
		num, den, ok := strings.Cut(strings.TrimSpace(rest), "/")
		n, err1 := strconv.ParseInt(num, 10, 64)
		d, err2 := strconv.ParseInt(den, 10, 64)
		if !ok || err1 != nil || err2 != nil || n <= 0 || d <= 0 {
			return Line{}, fmt.Errorf("framehash: bad time base %q", rest)
		}
		return Line{Kind: TimeBase, TimeBase: [2]int64{n, d}}, nil
	}
	if text[0] == '#' {
		return Line{}, nil
	}
	f := strings.Split(text, ",")
	if len(f) != 6 {
		return Line{}, fmt.Errorf("framehash: unexpected line %q", text)
	}
	pts, err1 := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
	dur, err2 := strconv.ParseInt(strings.TrimSpace(f[3]), 10, 64)
	h, err3 := hex.DecodeString(strings.TrimSpace(f[5]))
	if err1 != nil || err2 != nil || err3 != nil || len(h) != Size {
		return Line{}, fmt.Errorf("framehash: unexpected line %q", text)
	}
	l := Line{Kind: Picture, PTS: pts, Duration: max(dur, 0)}
	copy(l.Hash[:], h)
	return l, nil
}

// maxLine bounds a line: framehash lines are well under 100 bytes.
const maxLine = 1 << 10

// ErrTooMany: a Collector saw more than its Max pictures.
var ErrTooMany = errors.New("framehash: too many pictures")

// Collector is an io.Writer for ffmpeg's framehash output that keeps the
// pictures' hashes, in order, concatenated. It never fails a Write, so
// ffmpeg is never blocked on it; Err says what went wrong, if anything, and
// then it keeps nothing more.
type Collector struct {
	// Max is the most pictures kept; more is ErrTooMany. 0: no bound.
	Max    int
	hashes []byte
	rest   []byte
	err    error
}

// Write parses p's complete lines and keeps the rest for the next Write.
func (c *Collector) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && c.err == nil {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.rest = append(c.rest, p...)
			if len(c.rest) > maxLine {
				c.err = errors.New("framehash: line too long")
			}
			break
		}
		line := p[:i]
		if len(c.rest) > 0 {
			line = append(c.rest, line...)
			c.rest = c.rest[:0]
		}
		c.add(line)
		p = p[i+1:]
	}
	return n, nil
}

func (c *Collector) add(line []byte) {
	l, err := Parse(line)
	switch {
	case err != nil:
		c.err = err
	case l.Kind != Picture:
	case c.Max > 0 && len(c.hashes) >= c.Max*Size:
		c.err, c.hashes = ErrTooMany, nil
	default:
		c.hashes = append(c.hashes, l.Hash[:]...)
	}
}

// Hashes returns the hashes of every picture, Size bytes each, after the
// last Write (a final line without a newline included), or the error that
// stopped the collection.
func (c *Collector) Hashes() ([]byte, error) {
	if c.err == nil && len(c.rest) > 0 {
		c.add(c.rest)
		c.rest = nil
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.hashes, nil
}
