package quality

import (
	"fmt"
	"strconv"

	ffmpeg "github.com/u2takey/ffmpeg-go"
)

// samplePicks returns the positions of n pictures spread evenly over count
// (0 < n < count): the middle picture of each of n equal parts,
// floor((2k+1)·count / 2n) for k = 0..n-1.
func samplePicks(count, n int64) []int64 {
	picks := make([]int64, n)
	for k := range n {
		picks[k] = (2*k + 1) * count / (2 * n)
	}
	return picks
}

// sampleExpr is a select filter expression true for exactly the pictures
// samplePicks(count, n) returns, with select's n the position in the range.
// Picture i is picked when a part's middle falls in [i, i+1), that is when
// the number of middles below i+1, ceil((2(i+1)n - count) / 2count),
// exceeds the number below i. Constant size, constant time per picture.
func sampleExpr(count, n int64) string {
	below := func(x string) string {
		return fmt.Sprintf("ceil((2*(%s)*%d-%d)/%d)", x, n, count, 2*count)
	}
	return fmt.Sprintf("gt(%s,%s)", below("n+1"), below("n"))
}

// command builds the ffmpeg run: both ranges trimmed by picture count (and
// sampled), both brought to ref's size and pixel format, both renumbered
// 0, 1, 2..., then psnr and ssim, in a chain, writing their per-picture
// statistics to standard output; the pictures themselves go to the null
// muxer.
func command(refSrc source, ref Input, distSrc source, dist Input, count int64, picks []int64, maxPixels int64) *ffmpeg.Stream {
	end := count // pictures to decode in each range
	if picks != nil {
		end = picks[len(picks)-1] + 1
	}
	// side trims, samples and renumbers one input. The two inputs spell
	// "no autorotation" differently on purpose: ffmpeg-go merges nodes
	// with equal arguments, and comparing a file with itself would
	// otherwise make one input feeding both sides, which it cannot build.
	side := func(name string, src source, in Input, maxPixels int64, inKw ffmpeg.KwArgs, convert func(*ffmpeg.Stream) *ffmpeg.Stream) *ffmpeg.Stream {
		s := ffmpeg.Input("file:"+src.abs, inputOptions(in, maxPixels, inKw)).Get(strconv.Itoa(src.index)).
			Trim(ffmpeg.KwArgs{
				"start_frame": strconv.FormatInt(in.Skip, 10),
				"end_frame":   strconv.FormatInt(in.Skip+end, 10),
			})
		if picks != nil {
			s = s.Filter("select", nil, ffmpeg.KwArgs{"expr": sampleExpr(count, int64(len(picks)))})
		}
		// showinfo logs each picture compared, its time before the
		// renumbering (Frame.PTS) and how it is coded (Frame.Fields),
		// under the side's name (see damageLog).
		s = convert(s).Filter("showinfo@"+name, nil, ffmpeg.KwArgs{"checksum": "0"})
		return s.Filter("setpts", ffmpeg.Args{"N/TB"}).Filter("settb", nil, ffmpeg.KwArgs{"expr": "1"})
	}
	// Both sides are converted to the reference's size and pixel format,
	// always: with -reinit_filter 0 below, a stream whose format changes
	// midway (new in-band parameter sets) keeps this graph, and only scale
	// copes with frames that change under it. Rebuilding the graph instead
	// would restart trim's and the stats' picture counts.
	toRef := func(s *ffmpeg.Stream) *ffmpeg.Stream {
		s = s.Filter("scale", nil, ffmpeg.KwArgs{
			"w": strconv.Itoa(refSrc.width),
			"h": strconv.Itoa(refSrc.height),
		})
		if refSrc.pixFmt != "" {
			s = s.Filter("format", nil, ffmpeg.KwArgs{"pix_fmts": refSrc.pixFmt})
		}
		return s
	}
	r := side(refSide, refSrc, ref, 0, ffmpeg.KwArgs{"autorotate": "0", "reinit_filter": "0"}, toRef).Split()
	d := side(distSide, distSrc, dist, maxPixels, ffmpeg.KwArgs{"noautorotate": "", "reinit_filter": "0"}, toRef)
	// shortest: a side that runs out ends the comparison, rather than its
	// last picture being compared again (the count check then fails).
	statsKw := ffmpeg.KwArgs{"stats_file": "-", "shortest": "1"}
	psnr := ffmpeg.Filter([]*ffmpeg.Stream{d, r.Get("0")}, "psnr", nil, statsKw)
	ssim := ffmpeg.Filter([]*ffmpeg.Stream{psnr, r.Get("1")}, "ssim", nil, statsKw)
	return ssim.Output("-", ffmpeg.KwArgs{"f": "null", "fps_mode": "passthrough"})
}

// The names of command's two showinfo instances: their log lines come as
// "[showinfo@dist @ 0x...]".
const (
	refSide  = "ref"
	distSide = "dist"
)
