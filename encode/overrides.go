package encode

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// OverridePolicy is what a request's Options may choose beyond the
// configured VideoCodec, Preset and CRF, which a request may always name.
// Each override can multiply the cost of an encode: another codec (libx265
// or libaom-av1 cost many times libx264), a slower preset (placebo runs
// tens of times longer than medium), a lower CRF (more bits to code, and
// at 0 a lossless shard many times the input's size). The operator decides;
// the zero value allows nothing beyond the configured settings.
//
// The policy applies to the effective settings, not only to what a request
// names: a request that switches codec gets that codec's default preset and
// CRF (see FFmpegConfig), and those must be allowed too.
//
// It is a layer on top of the static allowlist (allowlist.go), which says
// what is valid at all: a value outside the allowlist is ErrInvalidOptions,
// a valid value this policy does not allow is ErrOverrideNotAllowed.
type OverridePolicy struct {
	// VideoCodecs are the allowlisted codecs a request may switch to.
	VideoCodecs []string
	// Presets are the presets a request may pick (or a switched codec's
	// default may be), by name: each must be valid for the configured
	// codec or one of VideoCodecs.
	Presets []string
	// CRF, when not nil, is the range of CRF values a request may pick (or
	// a switched codec's default may be), on the scale of the codec it
	// applies to (0-51 for x264/x265, 0-63 for vp9/av1).
	CRF *CRFRange
}

// CRFRange is an inclusive range of CRF values.
type CRFRange struct{ Min, Max int }

func (r CRFRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// maxCRF is the highest CRF any allowlisted codec takes.
func maxCRF() int {
	m := 0
	for _, spec := range videoCodecs {
		m = max(m, spec.crfMax)
	}
	return m
}

// Config keys that set the policy, for messages.
const (
	keyAllowCodecs  = "ffmpeg.allow_overrides.video_codecs"
	keyAllowPresets = "ffmpeg.allow_overrides.presets"
	keyAllowCRF     = "ffmpeg.allow_overrides.crf"
)

// validate checks p against the allowlist for a worker configured with
// codec.
func (p OverridePolicy) validate(codec string) error {
	codecs := []string{codec}
	for _, c := range p.VideoCodecs {
		if _, err := lookupCodec(c); err != nil {
			return fmt.Errorf("ffmpeg config: AllowOverrides.VideoCodecs (%s): %v", keyAllowCodecs, err)
		}
		codecs = append(codecs, c)
	}
	for _, preset := range p.Presets {
		if !slices.ContainsFunc(codecs, func(c string) bool { return slices.Contains(videoCodecs[c].presets, preset) }) {
			return fmt.Errorf("ffmpeg config: AllowOverrides.Presets (%s): %q is not a preset of %s",
				keyAllowPresets, preset, strings.Join(codecs, " or "))
		}
	}
	if r := p.CRF; r != nil && (r.Min < 0 || r.Min > r.Max || r.Max > maxCRF()) {
		return fmt.Errorf("ffmpeg config: AllowOverrides.CRF (%s): %d-%d: want 0 <= min <= max <= %d",
			keyAllowCRF, r.Min, r.Max, maxCRF())
	}
	return nil
}

// clone returns a copy of p that shares no memory with it.
func (p OverridePolicy) clone() OverridePolicy {
	c := OverridePolicy{VideoCodecs: slices.Clone(p.VideoCodecs), Presets: slices.Clone(p.Presets)}
	if p.CRF != nil {
		r := *p.CRF
		c.CRF = &r
	}
	return c
}

// allow refuses the effective settings s of a request with opts unless each
// of codec, preset and CRF is the configured one or one the policy allows.
// The error wraps ErrOverrideNotAllowed and names the wire option, what is
// allowed and the config keys.
func (f *FFmpeg) allow(s settings, opts Options) error {
	p := f.cfg.AllowOverrides
	if s.codec != f.cfg.VideoCodec && !slices.Contains(p.VideoCodecs, s.codec) {
		return fmt.Errorf("%w: video_codec %q is not allowed: this worker encodes with %s (ffmpeg.video_codec) and allows %s",
			ErrOverrideNotAllowed, s.codec, f.cfg.VideoCodec, alsoAllowed(p.VideoCodecs, keyAllowCodecs))
	}
	// Where a value came from, when the request did not name it.
	origin := func(named bool) string {
		if named {
			return ""
		}
		return fmt.Sprintf(" (the default of %s)", s.codec)
	}
	if s.preset != "" && s.preset != f.cfg.Preset && !slices.Contains(p.Presets, s.preset) {
		return fmt.Errorf("%w: preset %q%s is not allowed: this worker allows preset %s and %s",
			ErrOverrideNotAllowed, s.preset, origin(opts.Preset != ""),
			configured(f.cfg.Preset, "ffmpeg.preset"), alsoAllowed(p.Presets, keyAllowPresets))
	}
	if s.crf >= 0 && s.crf != f.cfg.CRF && (p.CRF == nil || s.crf < p.CRF.Min || s.crf > p.CRF.Max) {
		var also string
		if p.CRF == nil {
			also = alsoAllowed(nil, keyAllowCRF)
		} else {
			also = fmt.Sprintf("%s (%s)", p.CRF, keyAllowCRF)
		}
		crf := ""
		if f.cfg.CRF >= 0 {
			crf = strconv.Itoa(f.cfg.CRF)
		}
		return fmt.Errorf("%w: crf %d%s is not allowed: this worker allows crf %s and %s",
			ErrOverrideNotAllowed, s.crf, origin(opts.CRF != nil), configured(crf, "ffmpeg.crf"), also)
	}
	return nil
}

// configured describes a configured value in a refusal.
func configured(value, key string) string {
	if value == "" {
		return fmt.Sprintf("none (%s is unset)", key)
	}
	return fmt.Sprintf("%s (%s)", value, key)
}

// alsoAllowed describes a policy list in a refusal.
func alsoAllowed(values []string, key string) string {
	if len(values) == 0 {
		return fmt.Sprintf("no other (%s is empty)", key)
	}
	return fmt.Sprintf("%s (%s)", strings.Join(values, ", "), key)
}
