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
	// 100 frames in 10 s, three times, on a: 0.1 s a frame.
	paced := []sample{{frames(100), 10 * time.Second, 0, ""}, {frames(100), 10 * time.Second, 0, ""}, {frames(100), 10 * time.Second, 0, ""}}
	with := func(extra ...sample) []sample { return append(extra, paced...) }
	tests := []struct {
		name      string
		samples   []sample
		judged    string // the attempt's worker; "a" if empty
		cuts      int    // its straggles in a row, after the samples
		task      ChunkTask
		straggles int
		want      time.Duration
		ok        bool
	}{
		{name: "too few stored", samples: paced[:2], task: frames(100)},
		{name: "factor times median", samples: paced, task: frames(100), want: 80 * time.Second, ok: true},
		{name: "scaled to the chunk's frames", samples: paced, task: frames(200), want: 160 * time.Second, ok: true},
		{name: "floor", samples: paced, task: frames(10), want: time.Minute, ok: true},
		{name: "doubled per straggle of the chunk", samples: paced, task: frames(100), straggles: 2, want: 320 * time.Second, ok: true},
		{name: "doubled per straggle in a row of the worker", samples: paced, cuts: 2, task: frames(100), want: 320 * time.Second, ok: true},
		{name: "doubled up to ChunkTimeout", samples: paced, task: frames(100), straggles: 5},
		{name: "beyond ChunkTimeout", samples: paced, task: frames(100_000)},
		{name: "bytes kept apart from frames", samples: paced, task: ChunkTask{Size: 1 << 20}},
		{
			name: "an answer from the store is no pace",
			samples: []sample{{frames(100), time.Millisecond, 10, ""}, {frames(100), time.Millisecond, 10, ""},
				{frames(100), time.Millisecond, 10, ""}},
			task: frames(100),
		},
		{
			name:    "a worker's word that is no duration is not taken",
			samples: with(sample{frames(100), 10 * time.Second, math.NaN(), ""}, sample{frames(100), time.Second, math.Inf(1), ""}),
			task:    frames(100), want: 80 * time.Second, ok: true,
		},
		{
			name:    "a worker's own slower pace",
			samples: with(sample{frames(100), 20 * time.Second, 0, "b"}, sample{frames(100), 20 * time.Second, 0, "b"}),
			judged:  "b", task: frames(100), want: 160 * time.Second, ok: true,
		},
		{
			name:    "a worker that takes ages does not lift the others' limits",
			samples: with(sample{frames(100), 1000 * time.Hour, 0, "slow"}),
			task:    frames(100), want: 80 * time.Second, ok: true,
		},
		{
			name:    "nor does one that says so",
			samples: with(sample{frames(100), time.Millisecond, 1e9, "liar"}),
			task:    frames(100), want: 80 * time.Second, ok: true,
		},
		{
			name: "a worker answering at once does not make a worker of known pace late",
			samples: with(sample{frames(100), time.Millisecond, 0, "fast"}, sample{frames(100), time.Millisecond, 0, "fast"},
				sample{frames(100), time.Millisecond, 0, "fast"}, sample{frames(100), time.Millisecond, 0, "fast"}),
			task: frames(100), want: 80 * time.Second, ok: true,
		},
		{
			name: "a worker without samples is judged by the job's pace",
			samples: with(sample{frames(100), time.Millisecond, 0, "fast"}, sample{frames(100), time.Millisecond, 0, "fast"},
				sample{frames(100), time.Millisecond, 0, "fast"}),
			judged: "new", task: frames(100), want: time.Minute, ok: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c chunkPaces
			for _, s := range tt.samples {
				c.record(cmp.Or(s.worker, "a"), s.task, s.took, s.encode)
			}
			judged := cmp.Or(tt.judged, "a")
			for range tt.cuts {
				c.straggled(judged)
			}
			got, ok := c.limit(judged, tt.task, tt.straggles, cfg)
			if got != tt.want || ok != tt.ok {
				t.Errorf("limit = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestChunkPacesStoredEndsTheCuts: a chunk a worker stores ends its run of
// straggles.
func TestChunkPacesStoredEndsTheCuts(t *testing.T) {
	cfg := DispatchConfig{StragglerMin: time.Minute, StragglerFactor: 8, ChunkTimeout: 30 * time.Minute}
	task := ChunkTask{Frames: 100}
	var c chunkPaces
	for range 3 {
		c.record("a", task, 10*time.Second, 0)
	}
	c.straggled("a")
	if got, _ := c.limit("a", task, 0, cfg); got != 160*time.Second {
		t.Fatalf("after a straggle: %v, want 160s", got)
	}
	c.record("a", task, 10*time.Second, 0)
	if got, _ := c.limit("a", task, 0, cfg); got != 80*time.Second {
		t.Errorf("after a stored chunk: %v, want 80s", got)
	}
}
