// Package encode turns one chunk of video into an encoded shard, either by
// running the ffmpeg binary or by a deterministic simulation. It knows
// ffmpeg, and nothing about gRPC or the shard store: of the wire it takes
// only the encoder names.
package encode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/videoshard/videoshard/internal/quality"
	"github.com/videoshard/videoshard/internal/reqid"
	pb "github.com/videoshard/videoshard/proto"
)

// Encoder names recorded in metadata and reported by CheckHealth: the
// wire's (see proto/contract.go).
const (
	NameFFmpeg    = pb.EncoderFFmpeg
	NameSimulated = pb.EncoderSimulated
)

// Errors returned by encoders, wrapped with detail; test with errors.Is.
var (
	// ErrInvalidInput means the input is not media the encoder can decode;
	// the wrapped message carries ffmpeg's reason.
	ErrInvalidInput = errors.New("invalid input")
	// ErrInvalidOptions means a per-request override is outside the allowlist.
	ErrInvalidOptions = errors.New("invalid encoding options")
	// ErrOverrideNotAllowed means a per-request override is valid but the
	// operator does not let requests choose it (FFmpegConfig.AllowOverrides);
	// the message names the option, what is allowed and the config key.
	ErrOverrideNotAllowed = errors.New("encoding option not allowed on this worker")
	// ErrTooManyPixels means the input decodes to larger pictures, a higher
	// pixel rate or more pixels in all than the configured limits
	// (FFmpegConfig.Limits); the message has the measured and allowed
	// numbers and the config key.
	ErrTooManyPixels = errors.New("input exceeds the pixel limits")
	// ErrUnavailable means the encoder cannot run at all (binary missing).
	ErrUnavailable = errors.New("encoder unavailable")
)

// Output is where an encoder writes the encoded chunk. Encoders that run a
// process write to Path; in-process encoders call Write. An encoder uses one
// or the other, never both.
type Output interface {
	io.Writer
	Path() string
}

// Options are per-request overrides. Zero values mean the configured default.
type Options struct {
	VideoCodec string
	CRF        *int
	Preset     string
	// Trim, when not nil, keeps only Trim.Frames pictures from Trim.Start
	// on (see Trim); a trimmed chunk is encoded video only. Nil encodes the
	// whole chunk. An invalid trim is ErrInvalidOptions.
	Trim *Trim
	// HashPictures asks for Result.PictureHashes. It changes nothing in
	// the shard, so it is not one of the settings.
	HashPictures bool
}

// MaxPictureHashes bounds Result.PictureHashes: a chunk with more
// pictures gets none (4 MiB of hashes at most).
const MaxPictureHashes = 1 << 18

// Result describes what an encode produced, for the chunk's metadata.
type Result struct {
	Encoder    string // NameFFmpeg or NameSimulated
	VideoCodec string
	AudioCodec string
	Container  string
	// Settings are the effective encoder settings (codec, crf, preset, ...,
	// and SettingTrimStart/SettingTrimFrames for a trimmed chunk).
	Settings        map[string]string
	DurationSeconds float64
	FrameCount      int64
	Width, Height   int
	EncodeTime      time.Duration
	// InputSize is the number of input bytes consumed.
	InputSize int64
	// Quality is the shard's pictures measured against the input's (PSNR
	// +Inf when identical), when the encoder was asked to measure it
	// (FFmpegConfig.MeasureQuality) and could; nil otherwise.
	Quality *quality.Stats
	// PictureHashes, with Options.HashPictures, are the hashes of every
	// picture the input decoded to, in decoder output order and before any
	// trim, framehash.Size bytes each (see internal/framehash), from the
	// encode's own decode. Nil when not asked for, when the encoder decodes
	// nothing (Simulated), or beyond MaxPictureHashes pictures.
	PictureHashes []byte
}

// SettingsResolver is implemented by encoders that can say, without
// encoding, which effective settings an encode with opts would use: exactly
// the map Encode would return as Result.Settings, or the error (wrapping
// ErrInvalidOptions or ErrOverrideNotAllowed) Encode would return for opts.
// The worker compares it with a stored chunk's settings to answer a retried
// request from the store instead of encoding again. FFmpeg and Simulated
// implement it.
type SettingsResolver interface {
	Settings(opts Options) (map[string]string, error)
}

// FrameTrimmer is implemented by encoders that honour Options.Trim (an
// encoder that does not would encode the whole chunk) and report true. The
// worker advertises the capability only for them. FFmpeg and Simulated
// implement it; Simulated records the trim but cuts nothing, its output not
// being media.
type FrameTrimmer interface {
	TrimsFrames() bool
}

// PictureHasher is implemented by encoders that honour
// Options.HashPictures and report true; the worker advertises the
// capability only for them. FFmpeg implements it.
type PictureHasher interface {
	HashesPictures() bool
}

// Encoder encodes one chunk. Encode reads the whole input, writes the
// encoded chunk to out, and returns when done or when ctx ends; on error
// out's content is unspecified and the caller discards it.
type Encoder interface {
	Name() string
	Encode(ctx context.Context, in io.Reader, out Output, opts Options) (Result, error)
	// Check reports whether the encoder can run (for health checks).
	Check(ctx context.Context) error
}

// withRequestID names the request id ctx carries in an encode's err, so
// that a failure the worker returns or logs leads to its call's access
// line (and the caller, which got the id back, can quote it).
func withRequestID(ctx context.Context, err error) error {
	if id := reqid.From(ctx); err != nil && id != "" {
		return fmt.Errorf("request %s: %w", id, err)
	}
	return err
}
