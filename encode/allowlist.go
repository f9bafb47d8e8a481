package encode

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// codecSpec is what one allowlisted video encoder accepts. Requests can only
// pick values from these tables; they never reach ffmpeg as raw arguments.
type codecSpec struct {
	// crfMax is the highest CRF accepted (the lowest is 0); -1 means the
	// encoder takes no CRF.
	crfMax int
	// defaultCRF is used when the codec is chosen by a request override
	// (or configured with CRF 0); -1 means none.
	defaultCRF int
	// presets are the accepted presets; nil means the encoder takes none.
	presets []string
	// defaultPreset is used like defaultCRF; "" means none.
	defaultPreset string
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

// videoCodecs is the static allowlist of ffmpeg video encoders. Whether the
// installed ffmpeg has the configured one is verified by FFmpeg.Check.
//
// mpeg4 takes no CRF and no preset: it runs with ffmpeg's default rate
// control, and a request CRF for it is refused rather than mapped to -q:v.
// libvpx-vp9 and libaom-av1 take no preset (their speed knobs are
// -deadline/-cpu-used, which an operator can set through ExtraOutputArgs).
var videoCodecs = map[string]codecSpec{
	"libx264":    {crfMax: 51, defaultCRF: 23, presets: x26xPresets, defaultPreset: "medium"},
	"libx265":    {crfMax: 51, defaultCRF: 28, presets: x26xPresets, defaultPreset: "medium"},
	"libvpx-vp9": {crfMax: 63, defaultCRF: 31},
	"libaom-av1": {crfMax: 63, defaultCRF: 30},
	"libsvtav1":  {crfMax: 63, defaultCRF: 35, presets: numberStrings(0, 13)},
	"mpeg4":      {crfMax: -1, defaultCRF: -1},
}

// allowedVideoCodecs lists videoCodecs' keys, sorted, for messages.
func allowedVideoCodecs() string {
	var names []string
	for name := range videoCodecs {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// lookupCodec returns the spec of an allowlisted codec.
func lookupCodec(name string) (codecSpec, error) {
	spec, ok := videoCodecs[name]
	if !ok {
		return codecSpec{}, fmt.Errorf("video codec %q is not allowed (allowed: %s)", name, allowedVideoCodecs())
	}
	return spec, nil
}

// checkCRF reports whether crf is accepted by codec.
func (s codecSpec) checkCRF(codec string, crf int) error {
	if s.crfMax < 0 {
		return fmt.Errorf("crf %d not allowed: %s takes no crf", crf, codec)
	}
	if crf < 0 || crf > s.crfMax {
		return fmt.Errorf("crf %d out of range for %s (allowed: 0-%d)", crf, codec, s.crfMax)
	}
	return nil
}

// checkPreset reports whether preset is accepted by codec.
func (s codecSpec) checkPreset(codec, preset string) error {
	if s.presets == nil {
		return fmt.Errorf("preset %q not allowed: %s takes no preset", preset, codec)
	}
	if !slices.Contains(s.presets, preset) {
		return fmt.Errorf("preset %q not valid for %s (allowed: %s)", preset, codec, strings.Join(s.presets, ", "))
	}
	return nil
}

// isName reports whether s is non-empty and made only of lower-case ASCII
// letters, digits, and the bytes in extra.
func isName(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && !strings.ContainsRune(extra, rune(c)) {
			return false
		}
	}
	return true
}

// checkOptions validates per-request overrides against the allowlist, and
// the trim, for encoders that do not act on them (the simulation): a
// request is refused by every worker alike, whatever its encoder. An unset
// codec means libx264, the default.
func checkOptions(opts Options) error {
	codec := opts.VideoCodec
	if codec == "" {
		codec = "libx264"
	}
	spec, err := lookupCodec(codec)
	if err == nil && opts.CRF != nil {
		err = spec.checkCRF(codec, *opts.CRF)
	}
	if err == nil && opts.Preset != "" {
		err = spec.checkPreset(codec, opts.Preset)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return checkTrim(opts.Trim)
}
