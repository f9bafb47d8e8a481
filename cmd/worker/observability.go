package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"google.golang.org/grpc"

	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/internal/metrics"
	"github.com/videoshard/videoshard/internal/reqid"
	"github.com/videoshard/videoshard/internal/sysinfo"
	"github.com/videoshard/videoshard/storage"
)

// LogConfig is keys log.*.
type LogConfig struct {
	Format string // text or json
	Level  string // debug, info, warn or error
}

var (
	logFormats = []string{"text", "json"}
	logLevels  = []string{"debug", "info", "warn", "error"}
)

// MetricsConfig is keys metrics.*.
type MetricsConfig struct {
	// Listen is the address of the HTTP listener serving /metrics; empty
	// serves none.
	Listen string
	// Pprof adds Go's profiles at /debug/pprof/ on that listener.
	Pprof bool
}

// checkMetrics validates metrics.*. The listener has no TLS or auth of
// its own: beyond loopback the metrics are anyone's to read (a warning
// says so, see warnMetrics), and the profiles, which show the heap's
// contents, need insecure: true there.
func checkMetrics(r *keyReader, cfg Config) {
	m := cfg.Metrics
	if m.Listen == "" {
		r.check("metrics.pprof", !m.Pprof, "needs metrics.listen: profiles are served on the metrics listener")
		return
	}
	host, _, err := net.SplitHostPort(m.Listen)
	if err != nil {
		r.fail("metrics.listen", fmt.Errorf("%q is not host:port", m.Listen))
		return
	}
	if m.Pprof && !isLoopback(host) && !cfg.Insecure {
		r.fail("metrics.pprof", fmt.Errorf("metrics.listen %q is not a loopback address: profiles show the worker's memory "+
			"(tokens included) to anyone who can reach it. Listen on 127.0.0.1, or set insecure: true if the network "+
			"itself is trusted", m.Listen))
	}
}

// warnMetrics says what listening beyond loopback exposes.
func warnMetrics(log *slog.Logger, m MetricsConfig, addr string) {
	host, _, _ := net.SplitHostPort(m.Listen)
	switch {
	case isLoopback(host):
	case m.Pprof:
		log.Warn("metrics and pprof listening beyond loopback without TLS or authentication: anyone who can reach the port can read the worker's memory and load its CPU",
			"metrics_listen", addr)
	default:
		log.Warn("metrics listening beyond loopback without TLS or authentication: anyone who can reach the port can read them",
			"metrics_listen", addr)
	}
}

// newLogger is the worker's logger, writing to w. Records logged under a
// call's context carry its request id.
func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Level)) // validated by loadConfig
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(reqid.Handler(h))
}

// workerMetrics returns the metrics of srv over store, which run wires
// into the gRPC server, or nil without metrics.listen.
func workerMetrics(cfg Config, srv *grpcapi.Server, store *storage.Store, codec string) *metrics.Worker {
	if cfg.Metrics.Listen == "" {
		return nil
	}
	return metrics.NewWorker(metrics.WorkerConfig{
		Encoder: cfg.Encoder,
		Codec:   codec,
		Tasks: func() metrics.TaskFigures {
			return metrics.TaskFigures{Active: srv.ActiveTasks(), Queued: srv.QueuedTasks(),
				Slots: srv.TaskSlots(), QueueCapacity: srv.QueueCapacity()}
		},
		Store: storeFigures(store),
	})
}

// startMetrics listens on metrics.listen and serves m (nil: nothing) there
// until ctx ends; the returned function waits for that. gs is the gRPC
// server whose methods m counts.
func startMetrics(ctx context.Context, cfg MetricsConfig, m *metrics.Worker, gs *grpc.Server, log *slog.Logger) (wait func(), err error) {
	if m == nil {
		return func() {}, nil
	}
	m.InitializeGRPC(gs)
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	warnMetrics(log, cfg, lis.Addr().String())
	log.Info("metrics listening", "metrics_addr", lis.Addr().String(), "pprof", cfg.Pprof)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := metrics.Serve(ctx, lis, metrics.Handler(m.Registry(), cfg.Pprof)); err != nil {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	return func() { <-done }, nil
}

// storeFigures reads the store's figures for the metrics, at every
// scrape: the store keeps its totals as chunks come and go.
func storeFigures(store *storage.Store) func() metrics.StoreFigures {
	return func() metrics.StoreFigures {
		u := store.Usage()
		f := metrics.StoreFigures{Bytes: u.Bytes, Chunks: u.Chunks, Evictions: store.Evicted(),
			Corrupted: store.Corrupted(), Quarantined: store.Quarantined()}
		if total, free, err := sysinfo.DiskBytes(store.Root()); err == nil {
			f.DiskBytes, f.FreeBytes = total, free
		}
		return f
	}
}
