package encode

import (
	"fmt"
	"slices"
	"strings"

	"github.com/videoshard/videoshard/internal/fftool"
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

// videoCodecs is the static allowlist of ffmpeg video encoders
// (internal/fftool's table). Whether the installed ffmpeg has the
// configured one is verified by FFmpeg.Check.
var videoCodecs = func() map[string]codecSpec {
	m := map[string]codecSpec{}
	for _, e := range fftool.VideoEncoders() {
		m[e.Name] = codecSpec{crfMax: e.CRFMax, defaultCRF: e.DefaultCRF, presets: e.Presets, defaultPreset: e.DefaultPreset}
	}
	return m
}()

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
