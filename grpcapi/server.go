// Package grpcapi serves the worker's wire API: it translates
// replication.VideoProcessingService messages into calls on the shard store
// and the encoder, and their errors into gRPC status codes (errors.go).
package grpcapi

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// Config holds the server's identity and limits. Zero values mean defaults.
type Config struct {
	// WorkerID is reported in every response.
	WorkerID string
	// VideoCodec is the encoder's default codec, reported by CheckHealth.
	VideoCodec string
	// MaxConcurrentTasks bounds encodes in flight (default 1).
	MaxConcurrentTasks int
	// MaxQueuedTasks bounds requests waiting for an encode slot; beyond it
	// ProcessChunk answers ResourceExhausted at once (default 4x concurrency).
	MaxQueuedTasks int
	// MaxChunkBytes bounds a chunk sent by UploadChunk or ProcessChunk.
	MaxChunkBytes int64
	// MaxMessageBytes is the gRPC message limit the server was built with;
	// unary GetShard refuses shards that would not fit.
	MaxMessageBytes int
	// FrameBytes is the data size of one DownloadShard message (default 1 MiB).
	FrameBytes int
	// HealthTTL is how long a dependency check (encoder, store) is reused
	// (default 30 s): checking runs ffmpeg four times, about 0.15 CPU-s, too
	// much to repeat for every probe or every few seconds.
	HealthTTL time.Duration
	// HealthTimeout bounds one dependency check (default 10 s). It is the
	// server's own: no caller's deadline shortens a check.
	HealthTimeout time.Duration
	Logger        *slog.Logger
}

// Server implements pb.VideoProcessingServiceServer.
type Server struct {
	pb.UnimplementedVideoProcessingServiceServer

	store *storage.Store
	enc   encode.Encoder
	cfg   Config
	log   *slog.Logger

	slots  chan struct{} // one token per encode in flight
	queued atomic.Int32  // requests waiting for a slot
	active atomic.Int32  // encodes in flight

	corrupted atomic.Int64 // shards found corrupt since start (CheckHealth)

	health *healthState
}

// NewServer returns a server over store and enc.
func NewServer(store *storage.Store, enc encode.Encoder, cfg Config) *Server {
	if cfg.MaxConcurrentTasks <= 0 {
		cfg.MaxConcurrentTasks = 1
	}
	if cfg.MaxQueuedTasks <= 0 {
		cfg.MaxQueuedTasks = 4 * cfg.MaxConcurrentTasks
	}
	if cfg.MaxChunkBytes <= 0 {
		cfg.MaxChunkBytes = 4 << 30
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 4 << 20
	}
	if cfg.FrameBytes <= 0 {
		cfg.FrameBytes = 1 << 20
	}
	cfg.FrameBytes = min(cfg.FrameBytes, cfg.MaxMessageBytes-messageHeadroom)
	if cfg.HealthTTL <= 0 {
		cfg.HealthTTL = 30 * time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		store:  store,
		enc:    enc,
		cfg:    cfg,
		log:    cfg.Logger,
		slots:  make(chan struct{}, cfg.MaxConcurrentTasks),
		health: newHealthState(),
	}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterVideoProcessingServiceServer(g, s)
}

// Run does the server's background work (CPU sampling) until ctx ends,
// then cancels a dependency check in flight.
func (s *Server) Run(ctx context.Context) {
	defer s.health.stop()
	s.health.cpu.Run(ctx, time.Second)
}

// ActiveTasks is the number of encodes in flight.
func (s *Server) ActiveTasks() int { return int(s.active.Load()) }
