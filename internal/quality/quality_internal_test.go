package quality

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestQualitySampleExpr checks that the select expression picks exactly the
// positions samplePicks returns, evaluated as ffmpeg does (doubles).
func TestSampleExpr(t *testing.T) {
	below := func(x, count, n int64) float64 {
		return math.Ceil(float64(2*x*n-count) / float64(2*count))
	}
	for count := int64(2); count <= 120; count++ {
		for n := int64(1); n < count; n++ {
			picks := samplePicks(count, n)
			var got []int64
			for i := range count {
				if below(i+1, count, n) > below(i, count, n) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, picks) {
				t.Fatalf("count %d, n %d: expression picks %v, samplePicks %v", count, n, got, picks)
			}
		}
	}
	if got, want := sampleExpr(47, 7), "gt(ceil((2*(n+1)*7-47)/94),ceil((2*(n)*7-47)/94))"; got != want {
		t.Errorf("sampleExpr = %s, want %s", got, want)
	}
}

func TestStatsParser(t *testing.T) {
	const (
		psnr1 = "n:1 mse_avg:15.18 mse_y:15.15 mse_u:15.14 mse_v:15.34 psnr_avg:36.32 psnr_y:36.33 psnr_u:36.33 psnr_v:36.27 \n"
		ssim1 = "n:1 Y:0.829717 U:0.845362 V:0.847573 All:0.835300 (7.833070)\n"
		psnr2 = "n:2 mse_avg:0.00 mse_y:0.00 mse_u:0.00 mse_v:0.00 psnr_avg:inf psnr_y:inf psnr_u:inf psnr_v:inf \n"
		ssim2 = "n:2 Y:1.000000 U:1.000000 V:1.000000 All:1.000000 (inf)\n"
		gray1 = "n:1 Y:0.900000 All:0.900000 (10.000000)\n"
	)
	tests := []struct {
		name  string
		want  int64
		input string
		out   []Frame
		err   string
	}{
		{name: "two pictures", want: 2, input: psnr1 + ssim1 + psnr2 + ssim2,
			out: []Frame{{PSNR: 36.32, SSIM: 0.8353}, {PSNR: math.Inf(1), SSIM: 1}}},
		{name: "interleaved otherwise", want: 2, input: psnr1 + psnr2 + ssim2 + ssim1,
			out: []Frame{{PSNR: 36.32, SSIM: 0.8353}, {PSNR: math.Inf(1), SSIM: 1}}},
		{name: "gray", want: 1, input: psnr1 + gray1, out: []Frame{{PSNR: 36.32, SSIM: 0.9}}},
		{name: "no final newline", want: 1, input: psnr1 + strings.TrimSuffix(ssim1, "\n"),
			out: []Frame{{PSNR: 36.32, SSIM: 0.8353}}},
		{name: "blank lines", want: 1, input: "\n" + psnr1 + "\n\n" + ssim1,
			out: []Frame{{PSNR: 36.32, SSIM: 0.8353}}},
		{name: "missing ssim", want: 2, input: psnr1 + ssim1 + psnr2, err: "compared 1 pictures of the 2 expected"},
		{name: "missing pictures", want: 3, input: psnr1 + ssim1, err: "compared 1 pictures of the 3 expected"},
		{name: "too many pictures", want: 1, input: psnr1 + ssim1 + psnr2, err: "statistics for picture 2, expected 1"},
		{name: "twice", want: 1, input: psnr1 + psnr1, err: "picture 1 measured twice"},
		{name: "picture 0", want: 1, input: "n:0 psnr_avg:30\n", err: "statistics for picture 0"},
		{name: "not stats", want: 1, input: "frame=  1 fps=0.0\n", err: "unexpected statistics line"},
		{name: "no value", want: 1, input: "n:1 mse_avg:1\n", err: "unexpected statistics line"},
		{name: "nan", want: 1, input: "n:1 psnr_avg:nan\n", err: "unexpected statistics line"},
		{name: "infinite ssim", want: 1, input: "n:1 All:inf\n", err: "unexpected statistics line"},
		{name: "long line", want: 1, input: "n:1 " + strings.Repeat("x", maxStatsLine), err: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every way of cutting the output in two writes.
			for cut := range len(tt.input) + 1 {
				q := newStatsParser(tt.want)
				for _, part := range []string{tt.input[:cut], tt.input[cut:]} {
					if n, err := q.Write([]byte(part)); n != len(part) || err != nil {
						t.Fatalf("Write = %d, %v", n, err)
					}
				}
				out, err := q.result()
				if tt.err != "" {
					if err == nil || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("cut %d: err = %v, want it to mention %q", cut, err, tt.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if !slices.Equal(out, tt.out) {
					t.Fatalf("cut %d: %+v, want %+v", cut, out, tt.out)
				}
			}
		})
	}
	q := newStatsParser(2)
	_, _ = q.Write([]byte(psnr1 + ssim1))
	if _, err := q.result(); !errors.Is(err, ErrFrameCountMismatch) {
		t.Errorf("short stats: err = %v, want ErrFrameCountMismatch", err)
	}
}

// TestStatsParser_SSIMNotMeasured: pictures with a plane smaller than
// SSIM's 8x8 window give ffmpeg's "nan" or "-nan": the SSIM is NaN (not
// measured), the PSNR kept, and Summarize and the JSON forms leave it out.
func TestStatsParser_SSIMNotMeasured(t *testing.T) {
	for _, nan := range []string{"nan", "-nan"} {
		q := newStatsParser(2)
		_, _ = q.Write([]byte("n:1 psnr_avg:40.00\nn:1 Y:0.999500 U:" + nan + " V:" + nan + " All:" + nan + " (inf)\n" +
			"n:2 psnr_avg:30.00\nn:2 Y:0.9 All:0.900000 (10.0)\n"))
		frames, err := q.result()
		if err != nil {
			t.Fatalf("%s: %v", nan, err)
		}
		if len(frames) != 2 || frames[0].PSNR != 40 || !math.IsNaN(frames[0].SSIM) || frames[1].SSIM != 0.9 {
			t.Fatalf("%s: %+v", nan, frames)
		}
		if s := Summarize(frames); s.MinSSIM != 0.9 || s.MeanSSIM != 0.9 || s.MinPSNR != 30 {
			t.Errorf("%s: Summarize = %+v, want SSIM of the measured picture only", nan, s)
		}
		if s := Summarize(frames[:1]); !math.IsNaN(s.MinSSIM) || !math.IsNaN(s.MeanSSIM) {
			t.Errorf("%s: Summarize of none measured = %+v, want NaN SSIM", nan, s)
		}
		b, err := json.Marshal(Summarize(frames[:1]))
		if err != nil || !strings.Contains(string(b), `"min_ssim":null`) {
			t.Errorf("%s: JSON %s, %v", nan, b, err)
		}
		var back Stats
		if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(back.MeanSSIM) {
			t.Errorf("%s: read back %+v, %v", nan, back, err)
		}
	}
}
