package encode

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// simBlockSize is the fixed block the simulated encoder transforms. Output
// depends only on the input bytes, never on how the reader splits its reads.
const simBlockSize = 64 << 10

// simBatchBlocks is how many blocks are read, transformed and written at a
// time: output goes out in large writes.
const simBatchBlocks = 16

// SimulatedConfig configures a Simulated encoder.
type SimulatedConfig struct {
	// Ratio is output size over input size, in (0, 1]. Zero means
	// DefaultSimulatedConfig's, 0.5.
	// Each 64 KiB input block contributes its first round(Ratio*len(block))
	// bytes to the output.
	Ratio float64
	// Delay is slept once per chunk, after the input is consumed, to model
	// encode time. It ends early, with ctx's error, when ctx ends. Zero means
	// no delay; negative is invalid.
	Delay time.Duration
}

// DefaultSimulatedConfig is the configuration a worker runs with unless
// told otherwise (cmd/worker's simulated.* keys start from it).
func DefaultSimulatedConfig() SimulatedConfig {
	return SimulatedConfig{Ratio: 0.5}
}

// Simulated is a deterministic in-process stand-in for a real encoder: the
// same input bytes always give the same output bytes. It writes through
// Output.Write and never uses Output.Path. It is safe for concurrent use.
type Simulated struct {
	ratio   float64
	delay   time.Duration
	buffers sync.Pool // of *[]byte, simBatchBlocks*simBlockSize long
}

var (
	_ Encoder          = (*Simulated)(nil)
	_ SettingsResolver = (*Simulated)(nil)
	_ FrameTrimmer     = (*Simulated)(nil)
)

// NewSimulated returns a Simulated encoder. The error names the invalid field.
func NewSimulated(cfg SimulatedConfig) (*Simulated, error) {
	ratio := cfg.Ratio
	if ratio == 0 {
		ratio = DefaultSimulatedConfig().Ratio
	}
	if math.IsNaN(ratio) || ratio <= 0 || ratio > 1 {
		return nil, fmt.Errorf("simulated config: Ratio %v must be in (0, 1]", cfg.Ratio)
	}
	if cfg.Delay < 0 {
		return nil, fmt.Errorf("simulated config: Delay %v must not be negative", cfg.Delay)
	}
	return &Simulated{ratio: ratio, delay: cfg.Delay}, nil
}

// Name returns NameSimulated.
func (s *Simulated) Name() string { return NameSimulated }

// TrimsFrames reports true: Encode accepts Options.Trim and records it.
func (s *Simulated) TrimsFrames() bool { return true }

// Check always succeeds: the simulation needs nothing outside the process.
func (s *Simulated) Check(context.Context) error { return nil }

// Encode reads in to the end in 64 KiB blocks and writes a prefix of each
// block to out, 16 blocks at a time. Empty input returns ErrInvalidInput;
// opts are checked against the allowlist like a real encoder's, then
// ignored, except that a trim is recorded in Result.Settings (the output
// is not media: nothing is cut). Errors name ctx's request id, as
// FFmpeg's do.
func (s *Simulated) Encode(ctx context.Context, in io.Reader, out Output, opts Options) (Result, error) {
	res, err := s.encode(ctx, in, out, opts)
	return res, withRequestID(ctx, err)
}

func (s *Simulated) encode(ctx context.Context, in io.Reader, out Output, opts Options) (Result, error) {
	if err := checkOptions(opts); err != nil {
		return Result{}, err
	}
	start := time.Now()
	bp, _ := s.buffers.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, simBatchBlocks*simBlockSize)
		bp = &b
	}
	defer s.buffers.Put(bp)
	buf := *bp

	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("simulated encode: %w", err)
		}
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			total += int64(n)
			// Keep each block's prefix, packed in place at the front.
			kept := 0
			for off := 0; off < n; off += simBlockSize {
				block := buf[off:min(off+simBlockSize, n)]
				kept += copy(buf[kept:], block[:int(math.Round(s.ratio*float64(len(block))))])
			}
			if err := writeFull(out, buf[:kept]); err != nil {
				return Result{}, fmt.Errorf("simulated encode: write output: %w", err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return Result{}, fmt.Errorf("simulated encode: read input: %w", rerr)
		}
	}
	if total == 0 {
		return Result{}, fmt.Errorf("%w: empty input", ErrInvalidInput)
	}
	if err := sleepCtx(ctx, s.delay); err != nil {
		return Result{}, fmt.Errorf("simulated encode: %w", err)
	}
	return Result{
		Encoder:    NameSimulated,
		VideoCodec: NameSimulated, // no codec: the encoder's name stands for one
		Container:  "raw",
		Settings:   s.settings(opts),
		EncodeTime: time.Since(start),
		InputSize:  total,
	}, nil
}

// Settings returns what Encode records as Result.Settings: the ratio, and
// the trim if any. Other options are ignored, as Encode ignores them.
func (s *Simulated) Settings(opts Options) (map[string]string, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	return s.settings(opts), nil
}

func (s *Simulated) settings(opts Options) map[string]string {
	m := map[string]string{"ratio": strconv.FormatFloat(s.ratio, 'g', -1, 64)}
	addTrimSettings(m, opts.Trim)
	return m
}

// writeFull writes p to w, treating a short write without error as an error.
func writeFull(w io.Writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := w.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	return err
}

// sleepCtx sleeps for d or until ctx ends, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
