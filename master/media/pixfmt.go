package media

import (
	"strconv"
	"strings"
)

// pixFormat is what a pixel format name (ffmpeg's, as ffprobe prints it)
// says of a picture's samples: enough to tell what an encode dropped.
type pixFormat struct {
	model  string // "yuv", "rgb" or "gray"; "" when the name is not known
	alpha  bool
	depth  int    // bits per component; 0 when not known
	chroma string // "420", "422", "444", ... for yuv; "" otherwise
}

// parsePixFormat reads ffmpeg's pixel format names: yuv420p10le,
// yuva444p12le, nv12, p010le, gbrap, rgb24, rgba64be, gray16le, ya8, ...
func parsePixFormat(name string) pixFormat {
	n := strings.TrimSuffix(strings.TrimSuffix(name, "le"), "be")
	if n == "" {
		return pixFormat{}
	}
	// Formats whose name says little of their samples.
	special := map[string]pixFormat{
		"nv12": {"yuv", false, 8, "420"}, "nv21": {"yuv", false, 8, "420"}, "nv16": {"yuv", false, 8, "422"},
		"nv24": {"yuv", false, 8, "444"}, "nv42": {"yuv", false, 8, "444"},
		"p010": {"yuv", false, 10, "420"}, "p012": {"yuv", false, 12, "420"}, "p016": {"yuv", false, 16, "420"},
		"p210": {"yuv", false, 10, "422"}, "p216": {"yuv", false, 16, "422"}, "p410": {"yuv", false, 10, "444"},
		"p416": {"yuv", false, 16, "444"}, "nv20": {"yuv", false, 10, "422"},
		"yuyv422": {"yuv", false, 8, "422"}, "uyvy422": {"yuv", false, 8, "422"}, "yvyu422": {"yuv", false, 8, "422"},
		"y210": {"yuv", false, 10, "422"}, "y212": {"yuv", false, 12, "422"}, "uyyvyy411": {"yuv", false, 8, "411"},
		"ayuv64": {"yuv", true, 16, "444"}, "vuya": {"yuv", true, 8, "444"}, "vuyx": {"yuv", false, 8, "444"},
		"xyz12": {"rgb", false, 12, ""}, "monow": {"gray", false, 1, ""}, "monob": {"gray", false, 1, ""},
		"rgb24": {"rgb", false, 8, ""}, "bgr24": {"rgb", false, 8, ""}, "rgb48": {"rgb", false, 16, ""},
		"bgr48": {"rgb", false, 16, ""}, "rgba64": {"rgb", true, 16, ""}, "bgra64": {"rgb", true, 16, ""},
		"x2rgb10": {"rgb", false, 10, ""}, "x2bgr10": {"rgb", false, 10, ""},
		"rgb565": {"rgb", false, 5, ""}, "bgr565": {"rgb", false, 5, ""}, "rgb555": {"rgb", false, 5, ""},
		"bgr555": {"rgb", false, 5, ""}, "rgb444": {"rgb", false, 4, ""}, "bgr444": {"rgb", false, 4, ""},
		"pal8": {"rgb", false, 8, ""}, // 256 colours of 8-bit RGB (its alpha not told)
		"rgb8": {"rgb", false, 3, ""}, "bgr8": {"rgb", false, 3, ""}, "rgb4": {"rgb", false, 2, ""}, "bgr4": {"rgb", false, 2, ""},
	}
	if f, ok := special[n]; ok {
		return f
	}
	for _, packed := range []string{"rgba", "bgra", "argb", "abgr"} {
		if n == packed {
			return pixFormat{"rgb", true, 8, ""}
		}
	}
	for _, padded := range []string{"0rgb", "rgb0", "0bgr", "bgr0"} {
		if n == padded {
			return pixFormat{"rgb", false, 8, ""}
		}
	}
	depth := func(rest string) int { // "p10" → 10, "p" → 8, "" → 8
		rest = strings.TrimPrefix(rest, "p")
		if rest == "" {
			return 8
		}
		d, err := strconv.Atoi(rest)
		if err != nil {
			return 0
		}
		return d
	}
	switch {
	case strings.HasPrefix(n, "yuv") || strings.HasPrefix(n, "yuvj"):
		rest := strings.TrimPrefix(strings.TrimPrefix(n, "yuvj"), "yuv")
		f := pixFormat{model: "yuv"}
		if strings.HasPrefix(rest, "a") {
			f.alpha, rest = true, rest[1:]
		}
		if len(rest) < 3 {
			return pixFormat{}
		}
		f.chroma, f.depth = rest[:3], depth(rest[3:])
		return f
	case strings.HasPrefix(n, "gbr"):
		rest := strings.TrimPrefix(n, "gbr")
		f := pixFormat{model: "rgb"}
		if strings.HasPrefix(rest, "a") {
			f.alpha, rest = true, rest[1:]
		}
		if strings.HasSuffix(rest, "f32") {
			f.depth = 32
		} else {
			f.depth = depth(rest)
		}
		return f
	case strings.HasPrefix(n, "ya"):
		return pixFormat{model: "gray", alpha: true, depth: depth(strings.TrimPrefix(n, "ya"))}
	case strings.HasPrefix(n, "gray"):
		rest := strings.TrimPrefix(n, "gray")
		if strings.HasSuffix(rest, "f32") {
			return pixFormat{model: "gray", depth: 32}
		}
		return pixFormat{model: "gray", depth: depth(rest)}
	}
	return pixFormat{}
}

// pixFormatLoss names what of src's samples out lost ("alpha", "12 to
// 10 bits", "RGB to YUV", "4:4:4 to 4:2:0 chroma"), or "" for nothing, or
// when either name is not known.
func pixFormatLoss(src, out string) string {
	s, o := parsePixFormat(src), parsePixFormat(out)
	if s.model == "" || o.model == "" {
		return ""
	}
	var lost []string
	if s.alpha && !o.alpha {
		lost = append(lost, "alpha dropped")
	}
	if s.depth > 0 && o.depth > 0 && o.depth < s.depth {
		lost = append(lost, strconv.Itoa(s.depth)+" to "+strconv.Itoa(o.depth)+" bits")
	}
	if s.model == "rgb" && o.model != "rgb" || s.model == "yuv" && o.model == "gray" {
		lost = append(lost, strings.ToUpper(s.model)+" to "+strings.ToUpper(o.model))
	}
	if s.chroma != "" && o.chroma != "" && chromaSamples(o.chroma) < chromaSamples(s.chroma) {
		lost = append(lost, chromaName(s.chroma)+" to "+chromaName(o.chroma)+" chroma")
	}
	return strings.Join(lost, ", ")
}

// chromaSamples ranks a subsampling by the chroma samples it keeps.
func chromaSamples(c string) int {
	return map[string]int{"410": 1, "411": 2, "420": 2, "440": 4, "422": 4, "444": 8}[c]
}

func chromaName(c string) string { return c[:1] + ":" + c[1:2] + ":" + c[2:] }

// pixFormatHasAlpha reports whether name is a pixel format with alpha.
func pixFormatHasAlpha(name string) bool { return parsePixFormat(name).alpha }
