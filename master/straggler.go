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
		limit, ok := j.paces.limit(f.w.addr, p.task, p.straggles, j.d.cfg)
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
		f.stop(fmt.Errorf("chunk %d: %w: %s has not answered in %v (its limit for the chunk's %s)",
			p.task.Index, ErrStraggler, f.w.addr, now.Sub(f.start).Round(time.Second), p.task.paceUnits()))
	}
	return next
}

// chunkPaces is what a job has learnt of how long its chunks take, worker
// by worker: the seconds per unit (see ChunkTask.paceUnit) of each chunk a
// worker encoded and stored, sorted, one list per kind of unit; and how
// many times in a row each worker's chunks straggled.
//
// An attempt's limit is StragglerFactor times the greater of its worker's
// own median and the job's typical pace: the lower median of the workers'
// medians, so that a worker that claims or takes ages cannot lift every
// limit past ChunkTimeout. A worker without samples of its own is judged
// by the job's pace, which a worker that answers at once with lies can
// pull down; each of its straggles in a row doubles its limit, so an
// honest worker slower than the others still gets a chunk through, and
// from then on is judged by its own pace.
type chunkPaces struct {
	byWorker map[string]*[3][]float64
	stored   [3]int         // chunks recorded, by kind of unit
	jobPace  [3]float64     // the lower median of the workers' medians, by kind; kept by record
	cut      map[string]int // straggles in a row, by worker
}

// stragglerSamples is how many of a job's chunks must be stored before any
// attempt is judged a straggler.
const stragglerSamples = 3

// record adds a chunk stored by worker, which took took from sending to
// its answer. One whose encode took longer than that, by the worker's
// word, was not encoded now (an answer from the store) or is a lie: it
// says nothing of the pace.
func (c *chunkPaces) record(worker string, t ChunkTask, took time.Duration, encodeSeconds float64) {
	delete(c.cut, worker)
	sec := took.Seconds()
	if sec <= 0 || encodeSeconds > sec {
		return
	}
	kind, units := t.paceUnit()
	if c.byWorker == nil {
		c.byWorker = make(map[string]*[3][]float64)
	}
	lists := c.byWorker[worker]
	if lists == nil {
		lists = new([3][]float64)
		c.byWorker[worker] = lists
	}
	v := sec / units
	i, _ := slices.BinarySearch(lists[kind], v)
	lists[kind] = slices.Insert(lists[kind], i, v)
	c.stored[kind]++
	// Once a sample, not at every judgement: the run loop asks for each
	// attempt in flight each time it wakes.
	var medians []float64
	for _, l := range c.byWorker {
		if list := l[kind]; len(list) > 0 {
			medians = append(medians, median(list))
		}
	}
	slices.Sort(medians)
	c.jobPace[kind] = medians[(len(medians)-1)/2]
}

// median is the middle of sorted, which is not empty.
func median(sorted []float64) float64 { return sorted[len(sorted)/2] }

// straggled counts a straggle of worker's.
func (c *chunkPaces) straggled(worker string) {
	if c.cut == nil {
		c.cut = make(map[string]int)
	}
	c.cut[worker]++
}

// pace is the seconds per unit of kind an attempt on worker is judged by:
// the greater of worker's median and the lower median of all workers'.
func (c *chunkPaces) pace(worker string, kind int) float64 {
	own := 0.0
	if lists := c.byWorker[worker]; lists != nil && len(lists[kind]) > 0 {
		own = median(lists[kind])
	}
	return max(own, c.jobPace[kind])
}

// limit is how long an attempt at t on worker may run, t having straggled
// straggles times before; ok is false while the job knows too little, or
// when the limit reaches cfg.ChunkTimeout, which then governs alone.
func (c *chunkPaces) limit(worker string, t ChunkTask, straggles int, cfg DispatchConfig) (time.Duration, bool) {
	kind, units := t.paceUnit()
	if c.stored[kind] < stragglerSamples {
		return 0, false
	}
	sec := cfg.StragglerFactor * c.pace(worker, kind) * units
	if sec >= cfg.ChunkTimeout.Seconds() {
		return 0, false
	}
	limit := max(cfg.StragglerMin, secondsDuration(sec))
	for range straggles + c.cut[worker] {
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
