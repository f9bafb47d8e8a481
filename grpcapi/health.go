package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/videoshard/videoshard/internal/sysinfo"
	pb "github.com/videoshard/videoshard/proto"
)

// FeatureFrameTrim is listed in HealthCheckResponse.features by a worker
// whose encoder honours ProcessChunkRequest.trim and UploadHeader.trim.
const FeatureFrameTrim = "frame_trim"

// FeaturePictureHashes is listed by a worker that answers
// want_picture_hashes with ProcessChunkResponse.picture_hashes.
const FeaturePictureHashes = "picture_hashes"

type healthState struct {
	cpu *sysinfo.CPUSampler

	mu        sync.Mutex // guards the fields below
	checkedAt time.Time
	err       error
	draining  bool
}

func newHealthState() *healthState {
	return &healthState{cpu: sysinfo.NewCPUSampler()}
}

// SetDraining marks the worker as shutting down: health turns unhealthy so
// masters stop sending work.
func (s *Server) SetDraining() {
	s.health.mu.Lock()
	s.health.draining = true
	s.health.mu.Unlock()
}

// Healthy checks the worker's dependencies: the encoder can run and the
// store is writable. Results are reused for HealthTTL.
func (s *Server) Healthy(ctx context.Context) error {
	h := s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return fmt.Errorf("draining: shutting down")
	}
	if !h.checkedAt.IsZero() && time.Since(h.checkedAt) < s.cfg.HealthTTL {
		return h.err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var problems []string
	if err := s.enc.Check(ctx); err != nil {
		problems = append(problems, err.Error())
	}
	if err := s.store.CheckWritable(); err != nil {
		problems = append(problems, err.Error())
	}
	h.err = nil
	if len(problems) > 0 {
		h.err = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	h.checkedAt = time.Now()
	return h.err
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

		CorruptedShardsDetected: s.corrupted.Load(),
		QuarantinedShards:       s.store.Quarantined(),
	}
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
	if err := s.Healthy(ctx); err != nil {
		resp.IsHealthy = false
		resp.Message = "unhealthy: " + err.Error()
	} else if len(problems) > 0 {
		resp.Message = "ok; " + strings.Join(problems, "; ")
	}
	return resp, nil
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
