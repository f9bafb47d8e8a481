package master

import (
	"cmp"
	"math"
	"testing"
	"time"
)

func TestChunkPacesLimit(t *testing.T) {
	cfg := DispatchConfig{StragglerMin: time.Minute, StragglerFactor: 8, ChunkTimeout: 30 * time.Minute}
	frames := func(n int64) ChunkTask { return ChunkTask{Frames: n, Size: 1 << 20} }
	type sample struct {
		task   ChunkTask
		took   time.Duration
		encode float64
		worker string // "a" if empty
	}
	// 100 frames in 10 s, three times: 0.1 s a frame.
	paced := []sample{{frames(100), 10 * time.Second, 0, ""}, {frames(100), 10 * time.Second, 0, ""}, {frames(100), 10 * time.Second, 0, ""}}
	tests := []struct {
		name      string
		samples   []sample
		task      ChunkTask
		straggles int
		want      time.Duration
		ok        bool
	}{
		{name: "too few stored", samples: paced[:2], task: frames(100)},
		{name: "factor times median", samples: paced, task: frames(100), want: 80 * time.Second, ok: true},
		{name: "scaled to the chunk's frames", samples: paced, task: frames(200), want: 160 * time.Second, ok: true},
		{name: "floor", samples: paced, task: frames(10), want: time.Minute, ok: true},
		{name: "doubled per straggle", samples: paced, task: frames(100), straggles: 2, want: 320 * time.Second, ok: true},
		{name: "doubled up to ChunkTimeout", samples: paced, task: frames(100), straggles: 5},
		{name: "beyond ChunkTimeout", samples: paced, task: frames(100_000)},
		{name: "bytes kept apart from frames", samples: paced, task: ChunkTask{Size: 1 << 20}},
		{
			name: "a stored chunk's encode time, not its instant answer",
			samples: []sample{{frames(100), time.Millisecond, 10, ""}, {frames(100), time.Millisecond, 10, ""},
				{frames(100), time.Millisecond, 10, ""}},
			task: frames(100), want: 80 * time.Second, ok: true,
		},
		{
			name: "a worker's word that is no duration is not taken",
			samples: append([]sample{{frames(100), 10 * time.Second, math.NaN(), ""}, {frames(100), 10 * time.Second, math.Inf(1), ""}},
				paced[0]),
			task: frames(100), want: 80 * time.Second, ok: true,
		},
		{
			name:    "one liar does not move the median",
			samples: append([]sample{{frames(100), 10 * time.Second, 1e300, ""}}, paced...),
			task:    frames(100), want: 80 * time.Second, ok: true,
		},
		{
			name: "the slowest worker's median",
			samples: append([]sample{{frames(100), 20 * time.Second, 0, "b"}, {frames(100), 20 * time.Second, 0, "b"}},
				paced...),
			task: frames(100), want: 160 * time.Second, ok: true,
		},
		{
			name: "a worker answering at once cannot make the others late",
			samples: append([]sample{{frames(100), time.Millisecond, 0, "liar"}, {frames(100), time.Millisecond, 0, "liar"},
				{frames(100), time.Millisecond, 0, "liar"}, {frames(100), time.Millisecond, 0, "liar"}}, paced[0]),
			task: frames(100), want: 80 * time.Second, ok: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c chunkPaces
			for _, s := range tt.samples {
				c.record(cmp.Or(s.worker, "a"), s.task, s.took, s.encode)
			}
			got, ok := c.limit(tt.task, tt.straggles, cfg)
			if got != tt.want || ok != tt.ok {
				t.Errorf("limit = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
