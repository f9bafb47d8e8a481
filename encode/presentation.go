package encode

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/proc"
)

// chunkPresentation is what of a chunk's presentation the encoder has to be
// told to keep. ffmpeg 5.1 hands the encoder the decoded frames' colour
// description and sample aspect ratio by itself, but libx264 codes
// interlaced frames as progressive unless given -flags +ildct+ilme (it then
// takes each frame's field order from the frame), and libx265 drops the
// HDR mastering display and content light level the chunk's bitstream
// carries unless given them in -x265-params. The master cannot put these
// back on stream copy.
type chunkPresentation struct {
	// interlaced: the chunk's first frame is interlaced.
	interlaced bool
	// masterDisplay and maxCLL are x265's master-display and max-cll
	// values; "" when the chunk has none.
	masterDisplay, maxCLL string
}

// probeChunkPresentation decodes the first video frame of the chunk at path
// (with the encoder's input restrictions) and reads its presentation.
func (f *FFmpeg) probeChunkPresentation(ctx context.Context, path string) (chunkPresentation, error) {
	kw := ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{f.inputOptions(), {
		"v":              "error",
		"hide_banner":    "",
		"select_streams": "v:0",
		"read_intervals": "%+#1", // the first packet
		"show_frames":    "",
		"of":             "json",
	}})
	args := append(ffmpeg.ConvertKwargsToCmdLineArgs(kw), "file:"+path)
	stdout := proc.NewLimitedBuffer(fftool.MaxProbeReport)
	stderr, err := proc.Run(ctx, proc.Cmd{Name: f.cfg.FFprobe, Args: args, Stdout: stdout})
	if err != nil {
		return chunkPresentation{}, fmt.Errorf("probe first frame: %w%s", err, withReason(stderr))
	}
	return parseChunkPresentation(stdout.Bytes())
}

// presentationResult is the outcome of a probeChunkPresentation.
type presentationResult struct {
	c   chunkPresentation // zero when err is set
	err error
}

// presentationProbe is a probeChunkPresentation running on its own
// goroutine: result receives its outcome once, and done is closed when it
// has returned (its ffprobe reaped).
type presentationProbe struct {
	result <-chan presentationResult
	done   <-chan struct{}
}

// startPresentationProbe starts probeChunkPresentation of path under ctx.
func (f *FFmpeg) startPresentationProbe(ctx context.Context, path string) presentationProbe {
	result := make(chan presentationResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := f.probeChunkPresentation(ctx, path)
		result <- presentationResult{c, err}
	}()
	return presentationProbe{result: result, done: done}
}

// parseChunkPresentation reads ffprobe's -show_frames JSON.
func parseChunkPresentation(report []byte) (chunkPresentation, error) {
	var rep struct {
		Frames []struct {
			InterlacedFrame int `json:"interlaced_frame"`
			SideData        []struct {
				Type         string `json:"side_data_type"`
				RedX         string `json:"red_x"`
				RedY         string `json:"red_y"`
				GreenX       string `json:"green_x"`
				GreenY       string `json:"green_y"`
				BlueX        string `json:"blue_x"`
				BlueY        string `json:"blue_y"`
				WhiteX       string `json:"white_point_x"`
				WhiteY       string `json:"white_point_y"`
				MinLuminance string `json:"min_luminance"`
				MaxLuminance string `json:"max_luminance"`
				MaxContent   *int   `json:"max_content"`
				MaxAverage   *int   `json:"max_average"`
			} `json:"side_data_list"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(report, &rep); err != nil {
		return chunkPresentation{}, fmt.Errorf("parse ffprobe frames: %w", err)
	}
	var p chunkPresentation
	if len(rep.Frames) == 0 {
		return p, nil
	}
	fr := rep.Frames[0]
	p.interlaced = fr.InterlacedFrame != 0
	for _, sd := range fr.SideData {
		switch sd.Type {
		case "Mastering display metadata":
			// x265 wants chromaticities in units of 0.00002 and
			// luminances in units of 0.0001 cd/m².
			xy := func(x, y string) (string, bool) {
				a, ok1 := units(x, 50000)
				b, ok2 := units(y, 50000)
				return "(" + a + "," + b + ")", ok1 && ok2
			}
			g, ok1 := xy(sd.GreenX, sd.GreenY)
			b, ok2 := xy(sd.BlueX, sd.BlueY)
			r, ok3 := xy(sd.RedX, sd.RedY)
			wp, ok4 := xy(sd.WhiteX, sd.WhiteY)
			maxL, ok5 := units(sd.MaxLuminance, 10000)
			minL, ok6 := units(sd.MinLuminance, 10000)
			if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 {
				p.masterDisplay = "G" + g + "B" + b + "R" + r + "WP" + wp + "L(" + maxL + "," + minL + ")"
			}
		case "Content light level metadata":
			if sd.MaxContent != nil && sd.MaxAverage != nil {
				p.maxCLL = fmt.Sprintf("%d,%d", *sd.MaxContent, *sd.MaxAverage)
			}
		}
	}
	return p, nil
}

// units converts ffprobe's rational s (e.g. "34000/50000") to a whole
// number of 1/scale, rounded.
func units(s string, scale int64) (string, bool) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return "", false
	}
	r.Mul(r, big.NewRat(scale, 1))
	n := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(r.Num(), big.NewInt(2)), r.Denom()), new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	return n.String(), true
}

// outputOptions adds to out, the output options for codec, what keeps p:
// -flags +ildct+ilme for libx264 on interlaced input, and master-display
// and max-cll appended to libx265's -x265-params.
func (p chunkPresentation) outputOptions(codec string, out ffmpeg.KwArgs) {
	switch codec {
	case "libx264":
		if p.interlaced {
			out["flags"] = "+ildct+ilme"
		}
	case "libx265":
		params := []string{}
		if old, ok := out["x265-params"].(string); ok && old != "" {
			params = append(params, old)
		}
		if p.masterDisplay != "" {
			params = append(params, "master-display="+p.masterDisplay)
		}
		if p.maxCLL != "" {
			params = append(params, "max-cll="+p.maxCLL)
		}
		if len(params) > 0 {
			out["x265-params"] = strings.Join(params, ":")
		}
	}
}

// needsChunkPresentation reports whether codec's encode depends on
// chunkPresentation, so that the first frame is worth probing.
func needsChunkPresentation(codec string) bool {
	return codec == "libx264" || codec == "libx265"
}
