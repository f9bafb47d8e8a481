package encode_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/videoshard/videoshard/encode"
)

const block = 64 << 10

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(b)
	return b
}

// wantSimulated is the specified output: the first round(ratio*len) bytes of
// each 64 KiB block of in.
func wantSimulated(in []byte, ratio float64) []byte {
	var out []byte
	for len(in) > 0 {
		n := min(len(in), block)
		out = append(out, in[:int(math.Round(ratio*float64(n)))]...)
		in = in[n:]
	}
	return out
}

func newSimulated(t *testing.T, cfg encode.SimulatedConfig) *encode.Simulated {
	t.Helper()
	s, err := encode.NewSimulated(cfg)
	if err != nil {
		t.Fatalf("NewSimulated(%+v): %v", cfg, err)
	}
	return s
}

// splitReader returns reads of varying, odd sizes.
type splitReader struct {
	r io.Reader
	i int
}

func (s *splitReader) Read(p []byte) (int, error) {
	s.i++
	n := min(len(p), 1+(s.i*7919)%(3*block))
	return s.r.Read(p[:n])
}

func TestSimulated_DeterministicAcrossReadSplits(t *testing.T) {
	in := randomBytes(3*block + 12345)
	want := wantSimulated(in, 0.5)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(in) },
		"one-byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(in)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(in)) },
		"data-err": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(in)) },
		"odd":      func() io.Reader { return &splitReader{r: bytes.NewReader(in)} },
	}
	enc := newSimulated(t, encode.SimulatedConfig{})
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			out := newFileOutput(t)
			res, err := enc.Encode(context.Background(), mk(), out, encode.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.bytes(t); !bytes.Equal(got, want) {
				t.Fatalf("output differs from expected: got %d bytes, want %d", len(got), len(want))
			}
			if got, want := res.InputSize, int64(len(in)); got != want {
				t.Errorf("InputSize = %d, want %d", got, want)
			}
		})
	}
}

func TestSimulated_RatioSizeExact(t *testing.T) {
	tests := []struct {
		ratio   float64
		size    int
		want    int
		setting string
	}{
		{0.5, 1, 1, "0.5"}, // math.Round rounds half away from zero
		{0.5, block, block / 2, "0.5"},
		{0.5, block + 1, block/2 + 1, "0.5"},
		{0.3, 2*block + 10, 2*19661 + 3, "0.3"},
		{1, 3*block + 17, 3*block + 17, "1"},
		{0.001, 100, 0, "0.001"},
		{0.25, block - 1, 16384, "0.25"},
	}
	for _, tt := range tests {
		enc := newSimulated(t, encode.SimulatedConfig{Ratio: tt.ratio})
		in := randomBytes(tt.size)
		out := newFileOutput(t)
		res, err := enc.Encode(context.Background(), bytes.NewReader(in), out, encode.Options{})
		if err != nil {
			t.Fatalf("ratio %v size %d: %v", tt.ratio, tt.size, err)
		}
		got := out.bytes(t)
		if len(got) != tt.want {
			t.Errorf("ratio %v size %d: output %d bytes, want %d", tt.ratio, tt.size, len(got), tt.want)
		}
		if !bytes.Equal(got, wantSimulated(in, tt.ratio)) {
			t.Errorf("ratio %v size %d: output content differs", tt.ratio, tt.size)
		}
		if n := out.paths.Load(); n != 0 {
			t.Errorf("Simulated called Output.Path %d times", n)
		}
		if res.Encoder != encode.NameSimulated || res.VideoCodec != "simulated" || res.Container != "raw" {
			t.Errorf("Result = %+v, want encoder/codec/container simulated/simulated/raw", res)
		}
		if got := res.Settings["ratio"]; got != tt.setting {
			t.Errorf("Settings[ratio] = %q, want %q", got, tt.setting)
		}
		if got, want := res.InputSize, int64(tt.size); got != want {
			t.Errorf("InputSize = %d, want %d", got, want)
		}
	}
}

func TestSimulated_DefaultRatioIsHalf(t *testing.T) {
	if got := encode.DefaultSimulatedConfig().Ratio; got != 0.5 {
		t.Fatalf("DefaultSimulatedConfig().Ratio = %v, want 0.5", got)
	}
	for _, cfg := range []encode.SimulatedConfig{{}, encode.DefaultSimulatedConfig()} {
		enc := newSimulated(t, cfg)
		out := newFileOutput(t)
		if _, err := enc.Encode(context.Background(), bytes.NewReader(randomBytes(1000)), out, encode.Options{}); err != nil {
			t.Fatal(err)
		}
		if got, want := len(out.bytes(t)), 500; got != want {
			t.Fatalf("%+v: output %d bytes, want %d", cfg, got, want)
		}
	}
}

func TestSimulated_ErrInvalidInput_Empty(t *testing.T) {
	enc := newSimulated(t, encode.SimulatedConfig{})
	_, err := enc.Encode(context.Background(), bytes.NewReader(nil), newFileOutput(t), encode.Options{})
	if !errors.Is(err, encode.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
}

func TestSimulated_ReadErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	enc := newSimulated(t, encode.SimulatedConfig{})
	in := io.MultiReader(bytes.NewReader(randomBytes(block+1)), iotest.ErrReader(boom))
	_, err := enc.Encode(context.Background(), in, newFileOutput(t), encode.Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestNewSimulated_BadConfig(t *testing.T) {
	tests := []struct {
		cfg   encode.SimulatedConfig
		field string
	}{
		{encode.SimulatedConfig{Ratio: -0.1}, "Ratio"},
		{encode.SimulatedConfig{Ratio: 1.5}, "Ratio"},
		{encode.SimulatedConfig{Ratio: math.NaN()}, "Ratio"},
		{encode.SimulatedConfig{Ratio: math.Inf(1)}, "Ratio"},
		{encode.SimulatedConfig{Delay: -time.Second}, "Delay"},
	}
	for _, tt := range tests {
		_, err := encode.NewSimulated(tt.cfg)
		if err == nil {
			t.Errorf("NewSimulated(%+v): want error", tt.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) {
			t.Errorf("NewSimulated(%+v) = %v, want the error to name %s", tt.cfg, err, tt.field)
		}
	}
}

func TestSimulated_DelayHonoursCancel(t *testing.T) {
	enc := newSimulated(t, encode.SimulatedConfig{Delay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := enc.Encode(ctx, bytes.NewReader(randomBytes(100)), newFileOutput(t), encode.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Encode returned after %v, long after the cancel", d)
	}
}

func TestSimulated_DelayIsMeasured(t *testing.T) {
	enc := newSimulated(t, encode.SimulatedConfig{Delay: 30 * time.Millisecond})
	res, err := enc.Encode(context.Background(), bytes.NewReader(randomBytes(100)), newFileOutput(t), encode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.EncodeTime < 30*time.Millisecond {
		t.Fatalf("EncodeTime = %v, want at least the 30ms delay", res.EncodeTime)
	}
}

func TestSimulated_Check(t *testing.T) {
	if err := newSimulated(t, encode.SimulatedConfig{}).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSimulated64MiB(b *testing.B) {
	in := randomBytes(64 << 20)
	enc, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(in)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(in)
		if _, err := enc.Encode(context.Background(), r, discardOutput{}, encode.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
