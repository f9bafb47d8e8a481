package master

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// flight is an attempt in flight: the run loop may stop it as a straggler.
type flight struct {
	w     *dispWorker
	start time.Time
	ctx   context.Context // the job's; cancelled with ErrStraggler by stopStragglers
	stop  context.CancelCauseFunc
	// stopped: stopStragglers cancelled it; run's goroutine only.
	stopped bool
}

func newFlight(jobCtx context.Context, w *dispWorker) *flight {
	ctx, stop := context.WithCancelCause(jobCtx)
	return &flight{w: w, start: time.Now(), ctx: ctx, stop: stop}
}

// stopStragglers cancels each attempt in flights that has run past its
// straggler limit (see DispatchConfig.StragglerMin), and returns when the
// next one will, or zero if none has a limit yet.
func (j *dispJob) stopStragglers(flights map[*pendingChunk]*flight, now time.Time) time.Time {
	var next time.Time
	for p, f := range flights {
		if f.stopped {
			continue
		}
		limit, ok := j.paces.limit(p.task, p.straggles, j.d.cfg)
		if !ok {
			continue
		}
		due := f.start.Add(limit)
		if due.After(now) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		f.stopped = true
		f.stop(fmt.Errorf("chunk %d: %w: %s has not answered in %v; for this chunk's %s the job's slowest worker takes %v at the median",
			p.task.Index, ErrStraggler, f.w.addr, now.Sub(f.start).Round(time.Second),
			p.task.paceUnits(), j.paces.median(p.task).Round(time.Millisecond)))
	}
	return next
}

// chunkPaces is what a job has learnt of how long its chunks take: the
// seconds per unit (see ChunkTask.paceUnit) of each stored chunk, sorted,
// one list per worker and kind of unit. A chunk is judged against the
// slowest worker's median: a worker that answers at once with lies cannot
// make honest workers' chunks look late (and draw their chunks to itself).
type chunkPaces struct {
	byWorker map[string]*[3][]float64
	stored   [3]int // chunks recorded, by kind of unit
}

// stragglerSamples is how many of a job's chunks must be stored before any
// attempt is judged a straggler.
const stragglerSamples = 3

// record adds a stored chunk that took took from sending to its answer,
// and encodeSeconds by its worker's word: an answer from the store comes
// at once, but says how long its encode took. A word that is no duration
// is not taken.
func (c *chunkPaces) record(worker string, t ChunkTask, took time.Duration, encodeSeconds float64) {
	sec := took.Seconds()
	if !math.IsNaN(encodeSeconds) && !math.IsInf(encodeSeconds, 0) {
		sec = max(sec, encodeSeconds)
	}
	if sec <= 0 {
		return
	}
	kind, units := t.paceUnit()
	v := sec / units
	if c.byWorker == nil {
		c.byWorker = make(map[string]*[3][]float64)
	}
	lists := c.byWorker[worker]
	if lists == nil {
		lists = new([3][]float64)
		c.byWorker[worker] = lists
	}
	i, _ := slices.BinarySearch(lists[kind], v)
	lists[kind] = slices.Insert(lists[kind], i, v)
	c.stored[kind]++
}

// median is the slowest worker's median time for t's units; 0 before any.
func (c *chunkPaces) median(t ChunkTask) time.Duration {
	kind, units := t.paceUnit()
	var slowest float64
	for _, lists := range c.byWorker {
		if list := lists[kind]; len(list) > 0 {
			slowest = max(slowest, list[len(list)/2])
		}
	}
	return secondsDuration(slowest * units)
}

// limit is how long an attempt at t may run, t having straggled straggles
// times before; ok is false while the job knows too little, or when the
// limit reaches cfg.ChunkTimeout, which then governs alone.
func (c *chunkPaces) limit(t ChunkTask, straggles int, cfg DispatchConfig) (time.Duration, bool) {
	kind, _ := t.paceUnit()
	if c.stored[kind] < stragglerSamples {
		return 0, false
	}
	sec := cfg.StragglerFactor * c.median(t).Seconds()
	if sec >= cfg.ChunkTimeout.Seconds() {
		return 0, false
	}
	limit := max(cfg.StragglerMin, secondsDuration(sec))
	for range straggles {
		if limit > cfg.ChunkTimeout/2 {
			return 0, false
		}
		limit *= 2
	}
	return limit, limit < cfg.ChunkTimeout
}

// paceUnit is what t's encode time is measured against: its frames when
// known (an encode's time goes with its pictures more than with its
// bytes), else its bytes, else the chunk as one unit; kind tells the
// three apart, their paces are kept apart.
func (t ChunkTask) paceUnit() (kind int, units float64) {
	switch {
	case t.Frames > 0:
		return 0, float64(t.Frames)
	case t.Size > 0:
		return 1, float64(t.Size)
	}
	return 2, 1
}

// paceUnits names t's units, for messages.
func (t ChunkTask) paceUnits() string {
	switch {
	case t.Frames > 0:
		return fmt.Sprintf("%d frames", t.Frames)
	case t.Size > 0:
		return fmt.Sprintf("%d bytes", t.Size)
	}
	return "chunk"
}

// secondsDuration converts seconds to a Duration, saturating.
func secondsDuration(sec float64) time.Duration {
	if sec >= float64(math.MaxInt64)/float64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(sec * float64(time.Second))
}
