package quality

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// maxStatsLine bounds one line of the psnr and ssim filters' statistics;
// real ones are under 200 bytes.
const maxStatsLine = 1024

// statsParser parses the psnr and ssim filters' statistics as ffmpeg
// writes them, one line per picture and filter, in any interleaving:
//
//	n:1 mse_avg:15.18 mse_y:15.15 ... psnr_avg:36.32 psnr_y:36.33 ...
//	n:1 Y:0.829717 U:0.845362 V:0.847573 All:0.835300 (7.833070)
//
// It holds the pictures reported so far (want at most) and one line; it
// never fails a write, so ffmpeg is never blocked, and keeps the first
// error for result.
type statsParser struct {
	want   int64
	frames []Frame
	seen   []uint8 // statPSNR | statSSIM per picture
	line   []byte
	err    error
}

const (
	statPSNR = 1 << iota
	statSSIM
)

func newStatsParser(want int64) *statsParser {
	return &statsParser{want: want}
}

func (q *statsParser) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && q.err == nil {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if len(q.line)+len(part) > maxStatsLine {
			q.err = fmt.Errorf("ffmpeg: a statistics line longer than %d bytes", maxStatsLine)
			break
		}
		if i < 0 {
			q.line = append(q.line, part...)
			break
		}
		line := part
		if len(q.line) > 0 {
			line = append(q.line, part...)
			q.line = q.line[:0]
		}
		q.parseLine(string(line))
		p = p[i+1:]
	}
	return n, nil
}

func (q *statsParser) parseLine(line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return
	}
	num, ok := strings.CutPrefix(fields[0], "n:")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil {
		q.err = fmt.Errorf("ffmpeg: unexpected statistics line %q", line)
		return
	}
	if n < 1 || n > q.want {
		q.err = fmt.Errorf("ffmpeg: statistics for picture %d, expected %d pictures", n, q.want)
		return
	}
	for int64(len(q.frames)) < n {
		q.frames = append(q.frames, Frame{})
		q.seen = append(q.seen, 0)
	}
	// Only PSNR may be infinite (identical pictures), and only +Inf; only
	// SSIM may be NaN (a plane smaller than its 8x8 window: not measured).
	var (
		bit           uint8
		dst           *float64
		key           string
		infinite, nan bool
	)
	switch {
	case strings.Contains(line, " psnr_avg:"):
		bit, dst, key, infinite = statPSNR, &q.frames[n-1].PSNR, "psnr_avg:", true
	case strings.Contains(line, " All:"):
		bit, dst, key, nan = statSSIM, &q.frames[n-1].SSIM, "All:", true
	default:
		q.err = fmt.Errorf("ffmpeg: unexpected statistics line %q", line)
		return
	}
	v, ok := 0.0, false
	for _, f := range fields[1:] {
		if text, found := strings.CutPrefix(f, key); found {
			if text == "-nan" { // glibc's printf of a NaN with its sign bit set
				text = "nan"
			}
			x, err := strconv.ParseFloat(text, 64)
			v, ok = x, err == nil
			break
		}
	}
	if !ok || math.IsNaN(v) && !nan || math.IsInf(v, -1) || (math.IsInf(v, 1) && !infinite) {
		q.err = fmt.Errorf("ffmpeg: unexpected statistics line %q", line)
		return
	}
	seen := &q.seen[n-1]
	if *seen&bit != 0 {
		q.err = fmt.Errorf("ffmpeg: picture %d measured twice", n)
		return
	}
	*seen |= bit
	*dst = v
}

// result returns the measured pictures; all the expected ones must be
// there, with both measures.
func (q *statsParser) result() ([]Frame, error) {
	if q.err == nil && len(q.line) > 0 {
		q.parseLine(string(q.line))
		q.line = q.line[:0]
	}
	if q.err != nil {
		return nil, q.err
	}
	done := int64(0)
	for done < int64(len(q.seen)) && q.seen[done] == statPSNR|statSSIM {
		done++
	}
	if done < q.want {
		return nil, fmt.Errorf("%w: ffmpeg compared %d pictures of the %d expected: an input decodes to fewer pictures than it has packets",
			ErrFrameCountMismatch, done, q.want)
	}
	return q.frames, nil
}
