package fftool

import (
	"slices"
	"strconv"
)

// VideoEncoder is one ffmpeg video encoder the workers may run: what it
// produces and which rate and speed settings it takes. The table of them
// (VideoEncoders) is the one both the worker's allowlist and the master's
// container checks read.
type VideoEncoder struct {
	// Name is ffmpeg's encoder name, e.g. "libx264".
	Name string
	// Codec is the codec it produces, by ffprobe's codec name: "h264".
	Codec string
	// CRFMax is the highest CRF it takes (the lowest is 0); -1: it takes
	// none. DefaultCRF is used when a request picks the encoder (-1: none).
	CRFMax, DefaultCRF int
	// Presets are the presets it takes (nil: none); DefaultPreset is used
	// like DefaultCRF ("" : none).
	Presets       []string
	DefaultPreset string
}

var x26xPresets = []string{
	"ultrafast", "superfast", "veryfast", "faster", "fast",
	"medium", "slow", "slower", "veryslow", "placebo",
}

func numberStrings(lo, hi int) []string {
	var s []string
	for i := lo; i <= hi; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return s
}

// VideoEncoders returns the table, sorted by name; the caller may keep and
// change it.
//
// mpeg4 takes no CRF and no preset: it runs with ffmpeg's default rate
// control, and a request CRF for it is refused rather than mapped to -q:v.
// libvpx-vp9 and libaom-av1 take no preset (their speed knobs are
// -deadline/-cpu-used, which an operator can set through extra arguments).
func VideoEncoders() []VideoEncoder {
	return []VideoEncoder{
		{Name: "libaom-av1", Codec: "av1", CRFMax: 63, DefaultCRF: 30},
		{Name: "libsvtav1", Codec: "av1", CRFMax: 63, DefaultCRF: 35, Presets: numberStrings(0, 13)},
		{Name: "libvpx-vp9", Codec: "vp9", CRFMax: 63, DefaultCRF: 31},
		{Name: "libx264", Codec: "h264", CRFMax: 51, DefaultCRF: 23, Presets: slices.Clone(x26xPresets), DefaultPreset: "medium"},
		{Name: "libx265", Codec: "hevc", CRFMax: 51, DefaultCRF: 28, Presets: slices.Clone(x26xPresets), DefaultPreset: "medium"},
		{Name: "mpeg4", Codec: "mpeg4", CRFMax: -1, DefaultCRF: -1},
	}
}

// LookupVideoEncoder returns the encoder called name, if the table has it.
func LookupVideoEncoder(name string) (VideoEncoder, bool) {
	for _, e := range VideoEncoders() {
		if e.Name == name {
			return e, true
		}
	}
	return VideoEncoder{}, false
}
