package encode_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/encode"
)

// What a request may override is the operator's: by default nothing beyond
// the configured codec, preset and CRF, which a request may always name.
// The policy judges the effective settings, a switched codec's defaults
// included; Settings and Encode refuse alike.
func TestFFmpeg_AllowOverrides(t *testing.T) {
	x265 := []string{"libx265"}
	tests := []struct {
		name   string
		cfg    encode.FFmpegConfig
		opts   encode.Options
		refuse []string // substrings of the refusal; nil: allowed
	}{
		{name: "default: no override", opts: encode.Options{}},
		{name: "default: the configured values named",
			opts: encode.Options{VideoCodec: "libx264", Preset: "medium", CRF: intPtr(23)}},
		{name: "default: the issue's libx265 placebo crf 0",
			opts:   encode.Options{VideoCodec: "libx265", Preset: "placebo", CRF: intPtr(0)},
			refuse: []string{`video_codec "libx265"`, "libx264 (ffmpeg.video_codec)", "ffmpeg.allow_overrides.video_codecs is empty"}},
		{name: "default: slower preset", opts: encode.Options{Preset: "placebo"},
			refuse: []string{`preset "placebo"`, "medium (ffmpeg.preset)", "ffmpeg.allow_overrides.presets is empty"}},
		{name: "default: faster preset", opts: encode.Options{Preset: "ultrafast"},
			refuse: []string{`preset "ultrafast"`, "ffmpeg.allow_overrides.presets"}},
		{name: "default: lower crf", opts: encode.Options{CRF: intPtr(0)},
			refuse: []string{"crf 0 ", "crf 23 (ffmpeg.crf)", "ffmpeg.allow_overrides.crf is empty"}},
		{name: "codec allowed, its default crf not",
			cfg:    encode.FFmpegConfig{AllowOverrides: encode.OverridePolicy{VideoCodecs: x265}},
			opts:   encode.Options{VideoCodec: "libx265"},
			refuse: []string{"crf 28 (the default of libx265)", "ffmpeg.allow_overrides.crf"}},
		{name: "codec allowed at its default crf",
			cfg:  encode.FFmpegConfig{AllowOverrides: encode.OverridePolicy{VideoCodecs: x265, CRF: &encode.CRFRange{Min: 18, Max: 30}}},
			opts: encode.Options{VideoCodec: "libx265"}},
		{name: "codec allowed, slower preset not",
			cfg:    encode.FFmpegConfig{AllowOverrides: encode.OverridePolicy{VideoCodecs: x265, CRF: &encode.CRFRange{Min: 18, Max: 30}}},
			opts:   encode.Options{VideoCodec: "libx265", Preset: "placebo"},
			refuse: []string{`preset "placebo"`}},
		{name: "switched codec's default preset must be allowed too",
			cfg: encode.FFmpegConfig{Preset: "ultrafast",
				AllowOverrides: encode.OverridePolicy{VideoCodecs: x265, CRF: &encode.CRFRange{Min: 0, Max: 51}}},
			opts:   encode.Options{VideoCodec: "libx265"},
			refuse: []string{`preset "medium" (the default of libx265)`, "preset ultrafast (ffmpeg.preset)"}},
		{name: "crf below the range",
			cfg:    encode.FFmpegConfig{AllowOverrides: encode.OverridePolicy{CRF: &encode.CRFRange{Min: 18, Max: 30}}},
			opts:   encode.Options{CRF: intPtr(17)},
			refuse: []string{"crf 17", "18-30 (ffmpeg.allow_overrides.crf)"}},
		{name: "crf at the range's edge",
			cfg:  encode.FFmpegConfig{AllowOverrides: encode.OverridePolicy{CRF: &encode.CRFRange{Min: 18, Max: 30}}},
			opts: encode.Options{CRF: intPtr(18)}},
		{name: "listed preset",
			cfg:  encode.FFmpegConfig{AllowOverrides: encode.OverridePolicy{Presets: []string{"ultrafast", "veryfast"}}},
			opts: encode.Options{Preset: "veryfast"}},
		{name: "unlisted preset names the list",
			cfg:    encode.FFmpegConfig{AllowOverrides: encode.OverridePolicy{Presets: []string{"ultrafast", "veryfast"}}},
			opts:   encode.Options{Preset: "slow"},
			refuse: []string{`preset "slow"`, "ultrafast, veryfast (ffmpeg.allow_overrides.presets)"}},
		{name: "configured codec without a preset",
			cfg:    encode.FFmpegConfig{VideoCodec: "libvpx-vp9", AllowOverrides: encode.OverridePolicy{VideoCodecs: []string{"libx264"}}},
			opts:   encode.Options{VideoCodec: "libx264", CRF: intPtr(31)},
			refuse: []string{`preset "medium" (the default of libx264)`, "none (ffmpeg.preset is unset)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFFmpeg(t, tt.cfg)
			_, serr := f.Settings(tt.opts)
			// Refused before the input is read: a reader that fails
			// would fail an encode that got further.
			_, eerr := f.Encode(context.Background(), failingReader{}, newFileOutput(t), tt.opts)
			for name, err := range map[string]error{"Settings": serr, "Encode": eerr} {
				if tt.refuse == nil {
					if errors.Is(err, encode.ErrOverrideNotAllowed) || errors.Is(err, encode.ErrInvalidOptions) {
						t.Errorf("%s(%+v) = %v, want it allowed", name, tt.opts, err)
					}
					continue
				}
				if !errors.Is(err, encode.ErrOverrideNotAllowed) || errors.Is(err, encode.ErrInvalidOptions) {
					t.Fatalf("%s(%+v) = %v, want ErrOverrideNotAllowed", name, tt.opts, err)
				}
				for _, want := range tt.refuse {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: %q does not say %q", name, err, want)
					}
				}
			}
		})
	}
}

// failingReader fails every read: an encode that reads its input fails
// with errRead.
type failingReader struct{}

var errRead = errors.New("input read")

func (failingReader) Read([]byte) (int, error) { return 0, errRead }

// A value outside the static allowlist stays ErrInvalidOptions whatever
// the policy: the policy only narrows what is valid.
func TestFFmpeg_AllowOverridesKeepsTheAllowlist(t *testing.T) {
	f := newFFmpeg(t, encode.FFmpegConfig{AllowOverrides: encode.AnyOverride()})
	for _, opts := range []encode.Options{
		{VideoCodec: "rm -rf /"},
		{Preset: "--help"},
		{CRF: intPtr(52)},
		{VideoCodec: "libvpx-vp9", Preset: "fast"},
	} {
		if _, err := f.Settings(opts); !errors.Is(err, encode.ErrInvalidOptions) || errors.Is(err, encode.ErrOverrideNotAllowed) {
			t.Errorf("Settings(%+v) = %v, want ErrInvalidOptions", opts, err)
		}
	}
}

func TestNewFFmpeg_BadOverridePolicy(t *testing.T) {
	tests := []struct {
		policy encode.OverridePolicy
		want   string
	}{
		{encode.OverridePolicy{VideoCodecs: []string{"libx264rgb"}}, "AllowOverrides.VideoCodecs"},
		{encode.OverridePolicy{Presets: []string{"turbo"}}, "AllowOverrides.Presets"},
		// "4" is a libsvtav1 preset, and libsvtav1 is not allowed.
		{encode.OverridePolicy{Presets: []string{"4"}}, `"4" is not a preset of libx264`},
		{encode.OverridePolicy{CRF: &encode.CRFRange{Min: 30, Max: 20}}, "AllowOverrides.CRF"},
		{encode.OverridePolicy{CRF: &encode.CRFRange{Min: -1, Max: 20}}, "AllowOverrides.CRF"},
		{encode.OverridePolicy{CRF: &encode.CRFRange{Min: 0, Max: 64}}, "AllowOverrides.CRF"},
	}
	for _, tt := range tests {
		_, err := encode.NewFFmpeg(encode.FFmpegConfig{AllowOverrides: tt.policy})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewFFmpeg(AllowOverrides %+v) = %v, want an error saying %q", tt.policy, err, tt.want)
		}
	}
	ok := encode.OverridePolicy{VideoCodecs: []string{"libsvtav1"}, Presets: []string{"4"}, CRF: &encode.CRFRange{Min: 20, Max: 63}}
	f, err := encode.NewFFmpeg(encode.FFmpegConfig{AllowOverrides: ok})
	if err != nil {
		t.Fatalf("NewFFmpeg(AllowOverrides %+v): %v", ok, err)
	}
	ok.VideoCodecs[0], ok.CRF.Min = "libx265", 0
	if c := f.Config().AllowOverrides; c.VideoCodecs[0] != "libsvtav1" || c.CRF.Min != 20 {
		t.Fatalf("AllowOverrides = %+v: config shares memory with callers", c)
	}
}
