package media

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
)

// What scanPackets records beyond the counts.
const (
	scanKeys = 1 << iota // the keyframes' positions and timestamps
	scanPTS              // every packet's presentation timestamp (noPTS included) and byte position
)

// keyframe is a keyframe's place in its stream: the packet's index in file
// order and its presentation timestamp (noPTS when it has none).
type keyframe struct {
	packet int64
	pts    int64
}

// noPTS marks a missing timestamp.
const noPTS = int64(-1 << 63)

// packetScan is what scanPackets read from one stream's packets. Timestamps
// are ticks of timeBase.
type packetScan struct {
	timeBase  rational
	packets   int64
	keyframes int
	// firstKey: the first packet in file order is a keyframe.
	firstKey bool
	// withPTS counts the packets that have a timestamp; the fields below
	// are valid when it is positive.
	withPTS int64
	minPTS  int64
	maxPTS  int64
	// lastDur is the duration of the packet with the largest timestamp
	// (0: unknown); endPTS is the largest pts+duration.
	lastDur int64
	endPTS  int64

	keys []keyframe // with scanKeys
	pts  []int64    // with scanPTS, in file order, one per packet
	pos  []int64    // with scanPTS, as pts: where the packet starts in the file, -1 when unknown
	what int
	line []byte // an incomplete line carried between writes
	err  error
}

// scanPackets lists the packets of stream index of the local file at abs
// with ffprobe (reading, not decoding, them) and returns their counts and
// timestamps. what selects the extra records (scanKeys, scanPTS). The output
// is parsed as it streams, so any number of packets takes constant memory
// beyond the records asked for.
func scanPackets(ctx context.Context, tools Tools, abs string, index int, what int) (*packetScan, error) {
	s := &packetScan{what: what}
	if err := probeTo(ctx, tools, abs, ffmpeg.KwArgs{
		"fflags":         "+genpts", // as scanPictures decodes: AVI and MPEG-PS lack some
		"select_streams": strconv.Itoa(index),
		"show_entries":   "stream=time_base:packet=pts,pos,duration,flags",
		"of":             "compact",
	}, s); err != nil {
		return nil, err
	}
	if len(s.line) > 0 && s.err == nil {
		s.parseLine(s.line)
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.timeBase.den == 0 {
		return nil, fmt.Errorf("ffprobe reported no time base for stream %d", index)
	}
	return s, nil
}

// probeTo runs ffprobe with opts on the local file abs, its report going
// to w as it streams. A run that fails (as opposed to one that cannot
// start or is cancelled) wraps ErrNotMedia.
func probeTo(ctx context.Context, tools Tools, abs string, opts ffmpeg.KwArgs, w io.Writer) error {
	return probeFailed(ctx, fftool.Run(ctx, tools.FFprobeBin(), ffprobeArgs(abs, opts), w))
}

// ffprobeArgs is ffprobe's command line for the file abs with opts, quiet
// but for errors.
func ffprobeArgs(abs string, opts ffmpeg.KwArgs) []string {
	kw := ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{{"v": "error", "hide_banner": ""}, opts})
	return append(ffmpeg.ConvertKwargsToCmdLineArgs(kw), "file:"+abs)
}

// probeFailed is err, an ffprobe run's, wrapping ErrNotMedia if ffprobe
// failed on the file (rather than being stopped or not started).
func probeFailed(ctx context.Context, err error) error {
	if err != nil && fftool.IsFailure(ctx, err) {
		return fmt.Errorf("%w: %w", ErrNotMedia, err)
	}
	return err
}

// Write parses ffprobe's compact output line by line. It never fails, so
// ffprobe is never blocked; a parse error is kept for scanPackets.
func (s *packetScan) Write(p []byte) (int, error) {
	splitLines(&s.line, p, func(line []byte) {
		if s.err == nil {
			s.parseLine(line)
		}
	})
	return len(p), nil
}

// splitLines calls parse with each complete line of p, after the
// incomplete line carried in *rest from the previous write, and carries
// p's own incomplete end in *rest. The Writers that parse ffprobe's and
// ffmpeg's output as it streams use it.
func splitLines(rest *[]byte, p []byte, parse func(line []byte)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			*rest = append(*rest, p...)
			return
		}
		line := p[:i]
		if len(*rest) > 0 {
			line = append(*rest, line...)
			*rest = (*rest)[:0]
		}
		parse(line)
		p = p[i+1:]
	}
}

// parseLine reads "packet|pts=1024|pos=4871|duration=512|flags=K_" or
// "stream|time_base=1/15360".
func (s *packetScan) parseLine(line []byte) {
	section, rest, _ := strings.Cut(strings.TrimSpace(string(line)), "|")
	for section == "program" { // MPEG-TS lists streams under their program
		section, rest, _ = strings.Cut(rest, "|")
	}
	switch section {
	case "packet":
		pts, pos, dur := noPTS, int64(-1), int64(0)
		key := false
		for field := range strings.SplitSeq(rest, "|") {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "pts":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					pts = n
				}
			case "pos":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					pos = n
				}
			case "duration":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
					dur = n
				}
			case "flags":
				key = strings.HasPrefix(v, "K")
			}
		}
		s.addPacket(pts, pos, dur, key)
	case "stream":
		for field := range strings.SplitSeq(rest, "|") {
			if k, v, _ := strings.Cut(field, "="); k == "time_base" {
				tb, ok := parseRational(v)
				if !ok || tb.num <= 0 {
					s.err = fmt.Errorf("ffprobe: bad time base %q", v)
					return
				}
				s.timeBase = tb
			}
		}
	case "":
	default:
		s.err = fmt.Errorf("ffprobe: unexpected output %q", line)
	}
}

func (s *packetScan) addPacket(pts, pos, dur int64, key bool) {
	if s.packets == 0 {
		s.firstKey = key
	}
	if key {
		s.keyframes++
		if s.what&scanKeys != 0 {
			s.keys = append(s.keys, keyframe{packet: s.packets, pts: pts})
		}
	}
	s.packets++
	if s.what&scanPTS != 0 {
		s.pts = append(s.pts, pts)
		s.pos = append(s.pos, pos)
	}
	if pts == noPTS {
		return
	}
	if s.withPTS == 0 || pts < s.minPTS {
		s.minPTS = pts
	}
	if s.withPTS == 0 || pts >= s.maxPTS {
		s.maxPTS, s.lastDur = pts, dur
	}
	if s.withPTS == 0 || pts+dur > s.endPTS {
		s.endPTS = pts + dur
	}
	s.withPTS++
}

// endTicks is where the stream's last frame ends: the largest pts+duration,
// or, when the last frame's duration is unknown, its pts plus one frame at
// fps.
func (s *packetScan) endTicks(fps float64) int64 {
	end := s.endPTS
	if s.lastDur == 0 && fps > 0 {
		frame := int64(float64(s.timeBase.den) / (float64(s.timeBase.num) * fps))
		end = max(end, s.maxPTS+frame)
	}
	return end
}

// duration is the stream's length in seconds, from its first frame's start
// to its last frame's end; 0 when there are no timestamps.
func (s *packetScan) duration(fps float64) float64 {
	if s.withPTS == 0 {
		return 0
	}
	return s.timeBase.seconds(s.endTicks(fps) - s.minPTS)
}

// sortedPTS returns the recorded timestamps in presentation order, in
// seconds from the first.
func (s *packetScan) sortedPTS() []float64 {
	pts := slices.DeleteFunc(slices.Clone(s.pts), func(p int64) bool { return p == noPTS })
	slices.Sort(pts)
	out := make([]float64, len(pts))
	for i, p := range pts {
		out[i] = s.timeBase.seconds(p - pts[0])
	}
	return out
}
