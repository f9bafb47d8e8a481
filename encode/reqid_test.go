package encode_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/internal/reqid"
)

// An encode's error names the request id its context carries: ffmpeg's
// reason and the simulated encoder's alike, their kinds kept.
func TestEncodeErrorsNameTheRequestID(t *testing.T) {
	sim, err := encode.NewSimulated(encode.DefaultSimulatedConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		enc  encode.Encoder
		in   func(t *testing.T) []byte
	}{
		{"ffmpeg", newFFmpeg(t, encode.FFmpegConfig{TempDir: t.TempDir()}), func(t *testing.T) []byte {
			return []byte("this is not a video, it is text")
		}},
		{"simulated", sim, func(*testing.T) []byte { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := reqid.With(context.Background(), "req-123")
			_, err := tt.enc.Encode(ctx, bytes.NewReader(tt.in(t)), newFileOutput(t), encode.Options{})
			if !errors.Is(err, encode.ErrInvalidInput) || !strings.Contains(err.Error(), "request req-123") {
				t.Fatalf("err = %v, want ErrInvalidInput naming request req-123", err)
			}
			_, err = tt.enc.Encode(context.Background(), bytes.NewReader(tt.in(t)), newFileOutput(t), encode.Options{})
			if err == nil || strings.Contains(err.Error(), "request") {
				t.Fatalf("without an id: err = %v", err)
			}
		})
	}
}
