package fftool

import (
	"math"
	"strconv"
	"strings"
)

// showinfo's log, as ffmpeg 5.1 writes it: a picture's line, "n:  12 pts:
// 309600 pts_time:3.44 pos: 9012 fmt:yuv420p sar:16/11 s:720x576 i:T
// iskey:0 type:B ", comes in one write; its colour line, "color_range:tv
// color_space:bt709 color_primaries:bt709 color_trc:bt709", in one write
// per property. A frame-threaded decoder's own messages (DNxHD logs each
// picture's format at verbose level) may land between two writes: glued,
// without a space, to the property before, and ending the line, so the
// properties after it come on a line of their own.

// ShownFieldMode reads the field mode off showinfo's line for a picture
// ("n: 12 pts: 309600 ... i:T iskey:0 type:B"): 'P' progressive, 'T' or 'B'
// interlaced with the top or bottom field first; 0 when it names none.
func ShownFieldMode(msg string) byte {
	for f := range strings.FieldsSeq(msg) {
		if v, ok := strings.CutPrefix(f, "i:"); ok && (v == "P" || v == "T" || v == "B") {
			return v[0]
		}
	}
	return 0
}

// ShownTime reads the presentation time, in seconds, off showinfo's line
// for a picture ("n: 12 pts: 309600 pts_time:3.44 ..."); false for a
// picture without one (pts_time:NOPTS) or a line that names none.
func ShownTime(msg string) (float64, bool) {
	for f := range strings.FieldsSeq(msg) {
		if v, ok := strings.CutPrefix(f, "pts_time:"); ok {
			t, err := strconv.ParseFloat(v, 64)
			return t, err == nil && !math.IsNaN(t) && !math.IsInf(t, 0)
		}
	}
	return 0, false
}

// ColourProperties are the properties of showinfo's colour line, in the
// order it writes them.
var ColourProperties = [...]string{"color_range", "color_space", "color_primaries", "color_trc"}

// colourNames are the names libavutil gives each property's values
// (av_color_range_name and the others, ffmpeg 5.1 and later).
var colourNames = map[string][]string{
	"color_range": {"unknown", "tv", "pc"},
	"color_space": {"chroma-derived-nc", "chroma-derived-c", "bt2020nc", "bt2020c", "smpte170m", "smpte240m",
		"smpte2085", "bt470bg", "unknown", "reserved", "bt709", "ycgco", "ictcp", "gbr", "fcc"},
	"color_primaries": {"smpte170m", "smpte240m", "smpte428", "smpte431", "smpte432", "bt470bg", "bt470m",
		"ebu3213", "jedec-p22", "unknown", "reserved", "bt2020", "bt709", "film"},
	"color_trc": {"iec61966-2-4", "iec61966-2-1", "arib-std-b67", "smpte2084", "smpte170m", "smpte240m",
		"smpte428", "bt2020-10", "bt2020-12", "bt1361e", "bt470bg", "bt470m", "unknown", "reserved",
		"linear", "log100", "log316", "bt709"},
}

// ShownColours calls set with each colour property (one of
// ColourProperties) and its value that a line of showinfo's log holds.
// The value is the longest of libavutil's names for the property that
// what follows its name begins with, so a decoder message glued to it is
// not taken for part of it; a value it has no name for (a later ffmpeg's)
// is read up to the next space.
func ShownColours(msg string, set func(property, value string)) {
	for _, p := range ColourProperties {
		at := strings.Index(msg, p+":")
		if at < 0 {
			continue
		}
		word, _, _ := strings.Cut(msg[at+len(p)+1:], " ")
		value := word
		longest := 0
		for _, name := range colourNames[p] {
			if len(name) > longest && strings.HasPrefix(word, name) {
				value, longest = name, len(name)
			}
		}
		set(p, value)
	}
}
