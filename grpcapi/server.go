// Package grpcapi serves the worker's wire API: it translates
// replication.VideoProcessingService messages into calls on the shard store
// and the encoder, and their errors into gRPC status codes (errors.go).
package grpcapi

import (
	"context"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/internal/wirecodec"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// Config holds the server's identity and limits. Zero values mean the
// defaults given per field; where zero means no limit, DefaultConfig has
// the limit a worker runs with.
type Config struct {
	// WorkerID is reported in every response.
	WorkerID string
	// VideoCodec is the encoder's default codec, reported by CheckHealth.
	VideoCodec string
	// MaxConcurrentTasks bounds encodes in flight (default 1;
	// DefaultConfig's is one per CPU).
	MaxConcurrentTasks int
	// MaxQueuedTasks bounds requests waiting for an encode slot; beyond it
	// ProcessChunk answers ResourceExhausted at once (default 4x concurrency).
	MaxQueuedTasks int
	// MaxChunkBytes bounds a chunk sent by UploadChunk or ProcessChunk
	// (default 4 GiB).
	MaxChunkBytes int64
	// MaxMessageBytes is the gRPC message limit, both ways (GRPCOptions
	// gives it to gRPC): it bounds a unary ProcessChunk, a GetShard answer
	// and every single message (default pb.DefaultMaxMessageBytes, 64 MiB).
	MaxMessageBytes int
	// MaxUnaryChunks bounds the unary ProcessChunk calls in flight, each of
	// which may hold MaxMessageBytes in memory; beyond it a call is refused
	// before its message is read (default MaxConcurrentTasks: one for each
	// encode slot, as many as a master sends at once).
	MaxUnaryChunks int
	// MaxConnsPerHost bounds the connections Listener keeps open from one
	// host (one IPv4 address, one IPv6 /64): beyond it a new one is closed
	// as it is accepted, so one client cannot hold the worker's file
	// descriptors and memory with idle connections (default
	// DefaultMaxConnsPerHost). A master needs one.
	MaxConnsPerHost int
	// MaxConns bounds the connections Listener keeps open in all (default
	// DefaultMaxConns): clients from many hosts cannot use up the
	// worker's file descriptors either, which its encodes and its store
	// need.
	MaxConns int
	// MaxUploads bounds the UploadChunk streams in flight (receiving,
	// waiting for a slot or encoding), each spooling up to MaxChunkBytes in
	// the store's TempDir and holding one message of up to MaxMessageBytes
	// while it receives; beyond it a stream is refused before its header is
	// read (default 2 x MaxConcurrentTasks: the next uploads arrive while
	// the slots encode).
	MaxUploads int
	// UploadIdleTimeout aborts an upload that brings less than a frame
	// (1 MiB) of data, and not the end of its stream, in this long: tiny
	// messages are no progress. Zero means no limit (DefaultConfig's is
	// 30 s).
	UploadIdleTimeout time.Duration
	// UploadTimeout bounds a whole upload, from its call to the end of its
	// stream, and the arrival of a unary ProcessChunk's message; zero means
	// no limit (DefaultConfig's is 10 minutes).
	UploadTimeout time.Duration
	// MaxConcurrentStreams bounds the calls in flight on one connection
	// (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); zero is gRPC's default, no
	// limit (DefaultConfig's is 100).
	MaxConcurrentStreams uint32
	// FrameBytes is the data size of one DownloadShard message (default 1 MiB).
	FrameBytes int
	// MaxReadBytes bounds the shard bytes that GetShard and DownloadShard
	// answers hold in memory until gRPC has written them out to their
	// clients (default 2 x MaxMessageBytes): a client that does not read
	// what it asked for holds its share and no more; beyond it reads wait
	// a little, then are refused with ResourceExhausted. A shard larger
	// than it must use DownloadShard.
	MaxReadBytes int64
	// HealthTTL is how long a dependency check (encoder, store) is reused
	// (default 30 s): checking runs ffmpeg four times, about 0.15 CPU-s, too
	// much to repeat for every probe or every few seconds.
	HealthTTL time.Duration
	// HealthTimeout bounds one dependency check (default 10 s). It is the
	// server's own: no caller's deadline shortens a check.
	HealthTimeout time.Duration
	// Peer is how ReplicateShard calls other workers (peer.go).
	Peer PeerConfig
	// Labels are the worker's failure-domain labels (CheckLabels),
	// reported by CheckHealth.
	Labels map[string]string
	Logger *slog.Logger
}

// Defaults of the zero Config's fields.
const (
	defaultMaxChunkBytes = 4 << 30
	defaultFrameBytes    = 1 << 20
	defaultHealthTTL     = 30 * time.Second
	defaultHealthTimeout = 10 * time.Second
)

// DefaultConfig is the configuration a worker runs with unless told
// otherwise (cmd/worker's limits.*, grpc.* and health.* keys start from
// it): one encode slot per CPU, bounded uploads and streams, and the
// zero Config's defaults spelt out. WorkerID, VideoCodec and Logger are the
// caller's.
func DefaultConfig() Config {
	return Config{
		MaxConcurrentTasks:   runtime.NumCPU(),
		MaxChunkBytes:        defaultMaxChunkBytes,
		MaxMessageBytes:      pb.DefaultMaxMessageBytes,
		UploadIdleTimeout:    30 * time.Second,
		UploadTimeout:        10 * time.Minute,
		MaxConcurrentStreams: 100,
		HealthTTL:            defaultHealthTTL,
		Peer:                 DefaultPeerConfig(),
	}
}

// Server implements pb.VideoProcessingServiceServer.
type Server struct {
	pb.UnimplementedVideoProcessingServiceServer

	store *storage.Store
	enc   encode.Encoder
	cfg   Config
	log   *slog.Logger
	// warns logs what clients' calls make the worker warn of, a line a
	// second of each kind at most.
	warns *warnLimiter

	slots  chan struct{} // one token per encode in flight
	queued atomic.Int32  // requests waiting for a slot
	active atomic.Int32  // encodes in flight

	codec      wirecodec.Codec     // keeps OnWritten: the read budget's releases
	readBudget *semaphore.Weighted // Config.MaxReadBytes (readbudget.go)
	frameBufs  sync.Pool           // *[]byte of FrameBytes: DownloadShard's frames, once gRPC is done with them
	shardBufs  shardBuffers        // GetShard's whole shards, once gRPC is done with them

	unaryGate  *gate     // unary ProcessChunk calls in flight (admission.go)
	uploadGate *gate     // UploadChunk streams in flight
	connBytes  connBytes // what each connection Listener accepted has brought
	replGate   *gate     // ReplicateShard calls in flight (replicate.go)

	// life is the server's own context, for work it owns beside its
	// callers (replications); it ends when Run returns.
	life    context.Context
	endLife context.CancelFunc

	health *healthState
}

// NewServer returns a server over store and enc.
// DefaultMaxConnsPerHost is Config.MaxConnsPerHost's default: room for a
// few masters, peers and tools on one host, far below a process's file
// descriptors.
const DefaultMaxConnsPerHost = 256

// DefaultMaxConns is Config.MaxConns's default: a farm's masters and peers
// many times over, a small share of the file descriptors Go lets a
// process open (its soft limit raised to the hard one, 2^20 on Debian).
const DefaultMaxConns = 4096

// IdleConnTimeout is how long a connection with no call in flight is kept
// before the worker closes it (gRPC's MaxConnectionIdle: a GOAWAY, after
// which a client dials again when it next calls).
const IdleConnTimeout = 5 * time.Minute

func NewServer(store *storage.Store, enc encode.Encoder, cfg Config) *Server {
	if cfg.MaxConcurrentTasks <= 0 {
		cfg.MaxConcurrentTasks = 1
	}
	if cfg.MaxQueuedTasks <= 0 {
		cfg.MaxQueuedTasks = 4 * cfg.MaxConcurrentTasks
	}
	if cfg.MaxUnaryChunks <= 0 {
		cfg.MaxUnaryChunks = cfg.MaxConcurrentTasks
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = 2 * cfg.MaxConcurrentTasks
	}
	if cfg.MaxConnsPerHost <= 0 {
		cfg.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxChunkBytes <= 0 {
		cfg.MaxChunkBytes = defaultMaxChunkBytes
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = pb.DefaultMaxMessageBytes
	}
	if cfg.FrameBytes <= 0 {
		cfg.FrameBytes = defaultFrameBytes
	}
	cfg.FrameBytes = min(cfg.FrameBytes, cfg.MaxMessageBytes-messageHeadroom)
	if cfg.MaxReadBytes <= 0 {
		cfg.MaxReadBytes = 2 * int64(cfg.MaxMessageBytes)
	}
	cfg.MaxReadBytes = max(cfg.MaxReadBytes, int64(cfg.FrameBytes))
	if cfg.HealthTTL <= 0 {
		cfg.HealthTTL = defaultHealthTTL
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = defaultHealthTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Peer = cfg.Peer.withDefaults()
	cfg.Labels = maps.Clone(cfg.Labels)
	life, endLife := context.WithCancel(context.Background())
	return &Server{
		store:      store,
		enc:        enc,
		cfg:        cfg,
		log:        cfg.Logger,
		warns:      newWarnLimiter(cfg.Logger, time.Second),
		slots:      make(chan struct{}, cfg.MaxConcurrentTasks),
		codec:      wirecodec.New().Lenient(),
		readBudget: semaphore.NewWeighted(cfg.MaxReadBytes),
		health:     newHealthState(),
		unaryGate: &gate{what: "unary ProcessChunk calls", key: "limits.max_unary_chunks",
			max: int64(cfg.MaxUnaryChunks), suspectFor: cfg.UploadIdleTimeout},
		uploadGate: &gate{what: "uploads", key: "limits.max_uploads", max: int64(cfg.MaxUploads),
			suspectFor: cfg.UploadIdleTimeout},
		replGate: &gate{what: "replications", key: "peer.max_concurrent_replications",
			max: int64(cfg.Peer.MaxConcurrent)},
		life:    life,
		endLife: endLife,
	}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterVideoProcessingServiceServer(g, s)
}

// Run does the server's background work (CPU sampling) until ctx ends,
// then cancels a dependency check and the replications in flight.
func (s *Server) Run(ctx context.Context) {
	defer s.endLife()
	defer s.health.stop()
	s.health.cpu.Run(ctx, time.Second)
}

// ActiveTasks is the number of encodes in flight.
func (s *Server) ActiveTasks() int { return int(s.active.Load()) }

// QueuedTasks is the number of requests waiting for an encode slot.
func (s *Server) QueuedTasks() int { return int(s.queued.Load()) }

// TaskSlots and QueueCapacity are the limits ActiveTasks and QueuedTasks
// reach when the worker is saturated (Config.MaxConcurrentTasks and
// MaxQueuedTasks, defaults applied).
func (s *Server) TaskSlots() int     { return cap(s.slots) }
func (s *Server) QueueCapacity() int { return s.cfg.MaxQueuedTasks }
