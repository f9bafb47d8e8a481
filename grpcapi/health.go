package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/videoshard/videoshard/internal/sysinfo"
	pb "github.com/videoshard/videoshard/proto"
)

// FeatureFrameTrim is listed in HealthCheckResponse.features by a worker
// whose encoder honours ProcessChunkRequest.trim and UploadHeader.trim.
const FeatureFrameTrim = pb.FeatureFrameTrim

// FeaturePictureHashes is listed by a worker that answers
// want_picture_hashes with ProcessChunkResponse.picture_hashes.
const FeaturePictureHashes = pb.FeaturePictureHashes

type healthState struct {
	cpu *sysinfo.CPUSampler
	// ctx is the server's own: dependency checks run under it, never under
	// a caller's, so a caller's short deadline cannot fail a check that
	// every other caller would then be told. stop ends it (Run).
	ctx  context.Context
	stop context.CancelFunc

	mu        sync.Mutex // guards the fields below
	checkedAt time.Time
	err       error
	running   *healthRun // the check in flight; nil when none
	draining  bool
}

// healthRun is one dependency check, shared by every caller that asks
// while it runs.
type healthRun struct {
	done chan struct{} // closed once err is set
	err  error
}

func newHealthState() *healthState {
	ctx, stop := context.WithCancel(context.Background())
	return &healthState{cpu: sysinfo.NewCPUSampler(), ctx: ctx, stop: stop}
}

// SetDraining marks the worker as shutting down: health turns unhealthy so
// masters stop sending work.
func (s *Server) SetDraining() {
	s.health.mu.Lock()
	s.health.draining = true
	s.health.mu.Unlock()
}

// failedHealthTTL bounds how long a failed dependency check is reused: a
// worker that ran out of file descriptors, or whose disk was full for a
// moment, says so again as soon as it has recovered, not HealthTTL later.
const failedHealthTTL = 2 * time.Second

// Healthy checks the worker's dependencies: the encoder can run and the
// store is writable. Results are reused for HealthTTL (a failure for at
// most failedHealthTTL). One check runs at a
// time, under the server's context and HealthTimeout: callers that ask
// meanwhile wait for it, or return ctx's error when ctx ends first, which
// leaves the check running for the others.
func (s *Server) Healthy(ctx context.Context) error {
	h := s.health
	h.mu.Lock()
	if h.draining {
		h.mu.Unlock()
		return errDraining
	}
	ttl := s.cfg.HealthTTL
	if h.err != nil {
		ttl = min(ttl, failedHealthTTL)
	}
	if !h.checkedAt.IsZero() && time.Since(h.checkedAt) < ttl {
		err := h.err
		h.mu.Unlock()
		return err
	}
	run := h.running
	if run == nil {
		run = &healthRun{done: make(chan struct{})}
		h.running = run
		go s.checkDependencies(run)
	}
	h.mu.Unlock()
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return fmt.Errorf("health check not finished: %w", ctx.Err())
	}
}

var errDraining = errors.New("draining: shutting down")

// checkDependencies runs one check for run and keeps its result for
// HealthTTL, unless the server stopped under it: a check cut short by
// shutdown says nothing about the dependencies.
func (s *Server) checkDependencies(run *healthRun) {
	h := s.health
	ctx, cancel := context.WithTimeout(h.ctx, s.cfg.HealthTimeout)
	defer cancel()
	var problems []string
	if err := s.enc.Check(ctx); err != nil {
		problems = append(problems, err.Error())
	}
	if err := s.store.CheckWritable(); err != nil {
		problems = append(problems, err.Error())
	}
	if err := s.store.CheckIndex(); err != nil {
		problems = append(problems, err.Error())
	}
	var err error
	if len(problems) > 0 {
		err = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	h.mu.Lock()
	run.err = err
	h.running = nil
	if h.ctx.Err() == nil {
		h.err, h.checkedAt = err, time.Now()
	}
	h.mu.Unlock()
	close(run.done)
}

// CheckHealth reports load, whether the worker can take chunks, its
// optional features, and the integrity counters (shards found corrupt
// since start, shards in quarantine).
func (s *Server) CheckHealth(ctx context.Context, req *pb.HealthCheckRequest) (*pb.HealthCheckResponse, error) {
	resp := &pb.HealthCheckResponse{
		IsHealthy:          true,
		WorkerId:           s.cfg.WorkerID,
		ActiveTasks:        s.active.Load(),
		Encoder:            s.enc.Name(),
		VideoCodec:         s.cfg.VideoCodec,
		MaxConcurrentTasks: int32(cap(s.slots)),
		MaxUnaryChunkBytes: int64(s.cfg.MaxMessageBytes - messageHeadroom),
		MaxChunkBytes:      s.cfg.MaxChunkBytes,
		Message:            "ok",
		Features:           s.features(),

		CorruptedShardsDetected: s.store.Corrupted(),
		QuarantinedShards:       s.store.Quarantined(),
		Labels:                  s.cfg.Labels,
		QuarantinedChunks:       s.recentQuarantines(),
	}
	usage, limits := s.store.Usage(), s.store.Limits()
	resp.StoreBytes, resp.StoreChunks = usage.Bytes, usage.Chunks
	resp.StoreMaxBytes, resp.StoreMinFreeBytes = limits.MaxBytes, limits.MinFreeBytes
	resp.EvictedChunks = s.store.Evicted()
	var problems []string
	if cpu, err := s.health.cpu.Percent(); err == nil {
		resp.CpuUtilization = float32(cpu)
	} else {
		problems = append(problems, err.Error())
	}
	if rss, err := sysinfo.RSSBytes(); err == nil {
		resp.MemoryUsageBytes = rss
	} else {
		problems = append(problems, err.Error())
	}
	if free, err := s.store.FreeBytes(); err == nil {
		resp.StorageFreeBytes = free
	}
	low := s.store.LowOnSpace()
	switch err := s.Healthy(ctx); {
	case err != nil && ctx.Err() != nil:
		// The caller gave up before the check finished: it gets its own
		// deadline or cancellation, not an answer about the worker.
		return nil, toStatus(ctx.Err())
	case err != nil:
		resp.IsHealthy = false
		resp.Message = "unhealthy: " + err.Error()
	case low != "":
		// Below the floor the operator set, new chunks would fail (or
		// evict what may be wanted): masters should send them elsewhere.
		resp.IsHealthy = false
		resp.Message = "unhealthy: " + low
	case len(problems) > 0:
		resp.Message = "ok; " + strings.Join(problems, "; ")
	}
	return resp, nil
}

// recentQuarantines is the store's RecentQuarantines on the wire.
func (s *Server) recentQuarantines() []*pb.QuarantinedChunk {
	recent := s.store.RecentQuarantines()
	out := make([]*pb.QuarantinedChunk, len(recent))
	for i, q := range recent {
		out[i] = &pb.QuarantinedChunk{VideoId: q.VideoID, ChunkIndex: int32(q.ChunkIndex), Reason: q.Reason,
			Time: q.Time.Format(time.RFC3339Nano)}
	}
	return out
}

// features lists the optional capabilities CheckHealth reports.
func (s *Server) features() []string {
	var f []string
	if s.trimsFrames() {
		f = append(f, FeatureFrameTrim)
	}
	if s.hashesPictures() {
		f = append(f, FeaturePictureHashes)
	}
	return f
}
