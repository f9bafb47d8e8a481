package encode_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/encode"
)

// Settings says, without encoding, what Encode records: the worker relies
// on the two agreeing to recognise a retried chunk.
func TestFFmpeg_SettingsMatchesEncode(t *testing.T) {
	t.Parallel()
	f := newFFmpeg(t, encode.FFmpegConfig{Preset: "ultrafast", ExtraOutputArgs: []string{"-metadata", "title=x"},
		AllowOverrides: encode.AnyOverride()})
	for _, opts := range []encode.Options{
		{},
		{CRF: intPtr(30)},
		{VideoCodec: "mpeg4"},
		{Trim: &encode.Trim{Start: 5, Frames: 20}},
	} {
		want, err := f.Settings(opts)
		if err != nil {
			t.Fatalf("Settings(%+v): %v", opts, err)
		}
		out := newFileOutput(t)
		res, err := f.Encode(context.Background(), openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), out, opts)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", opts, err)
		}
		if !maps.Equal(res.Settings, want) {
			t.Errorf("opts %+v: Settings = %v, Encode recorded %v", opts, want, res.Settings)
		}
	}
	if got, _ := f.Settings(encode.Options{}); got["extra_output_args"] != "-metadata title=x" {
		t.Errorf("configured extra output args not part of the settings: %v", got)
	}
}

func TestFFmpeg_SettingsRefusesWhatEncodeRefuses(t *testing.T) {
	t.Parallel()
	f := newFFmpeg(t, encode.FFmpegConfig{})
	for _, opts := range []encode.Options{
		{VideoCodec: "libx264; rm -rf /"},
		{CRF: intPtr(99)},
		{Preset: "warp"},
		{VideoCodec: "mpeg4", CRF: intPtr(20)},
	} {
		if _, err := f.Settings(opts); !errors.Is(err, encode.ErrInvalidOptions) {
			t.Errorf("Settings(%+v) = %v, want ErrInvalidOptions", opts, err)
		}
	}
	a, _ := f.Settings(encode.Options{})
	b, _ := f.Settings(encode.Options{CRF: intPtr(30)})
	if maps.Equal(a, b) {
		t.Errorf("different CRFs give the same settings %v", a)
	}
}

func TestSimulated_SettingsMatchesEncode(t *testing.T) {
	t.Parallel()
	s, err := encode.NewSimulated(encode.SimulatedConfig{Ratio: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Settings(encode.Options{VideoCodec: "libvpx-vp9"}) // allowed, then ignored
	if err != nil {
		t.Fatal(err)
	}
	// Outside the allowlist: refused like a real encoder would.
	if _, err := s.Settings(encode.Options{VideoCodec: "rm -rf /"}); !errors.Is(err, encode.ErrInvalidOptions) {
		t.Fatalf("Settings with a codec outside the allowlist: %v, want ErrInvalidOptions", err)
	}
	bad := 99
	if _, err := s.Encode(context.Background(), strings.NewReader("x"), newFileOutput(t), encode.Options{CRF: &bad}); !errors.Is(err, encode.ErrInvalidOptions) {
		t.Fatalf("Encode with CRF 99: %v, want ErrInvalidOptions", err)
	}
	res, err := s.Encode(context.Background(), openFile(t, testdata("h264_noaudio_320x240_30000-1001_3s.mkv")), newFileOutput(t), encode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(res.Settings, want) {
		t.Fatalf("Settings = %v, Encode recorded %v", want, res.Settings)
	}
}
