// Command worker is the videoshard worker daemon: it serves
// replication.VideoProcessingService (grpcapi) beside grpc.health.v1 and
// server reflection, encodes the chunks it receives (encode: ffmpeg or
// simulated) and keeps them as shards in its store (storage), which it
// scrubs in the background when told to. `worker scrub` checks a stopped
// worker's store once (scrub.go); `worker reindex` rebuilds its index
// (reindex.go).
//
// Its configuration comes from a YAML file, the environment and flags
// (config.go), onto the core packages' own configurations, which hold the
// defaults; transport security and tokens are in security.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/internal/sysinfo"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

func main() {
	if err := newRootCmd(newViper()).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func newRootCmd(v *viper.Viper) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:           "worker",
		Short:         "videoshard worker: encode video chunks and keep them as shards",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configFrom(v, configFile)
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML config file")
	f.String("listen", "", "address to listen on (key listen)")
	f.String("storage-root", "", "shard store directory (key storage.root)")
	f.String("encoder", "", "ffmpeg or simulated (key encoder)")
	for flag, key := range map[string]string{"listen": "listen", "storage-root": "storage.root", "encoder": "encoder"} {
		if err := v.BindPFlag(key, f.Lookup(flag)); err != nil {
			panic(err) // flags are defined just above
		}
	}
	cmd.AddCommand(newScrubCmd(v), newReindexCmd(v))
	return cmd
}

// configFrom reads the config file, if any, under env and flags.
func configFrom(v *viper.Viper, path string) (Config, error) {
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if err := readConfigFile(v, f); err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	return loadConfig(v)
}

// newEncoder returns the configured encoder and the video codec it encodes
// to by default (for CheckHealth).
// Its scratch files are made by createTemp (nil: in os.TempDir()).
func newEncoder(cfg Config, createTemp func(string) (encode.TempFile, error), log *slog.Logger) (encode.Encoder, string, error) {
	if cfg.Encoder == pb.EncoderSimulated {
		enc, err := encode.NewSimulated(cfg.Simulated)
		return enc, pb.EncoderSimulated, err
	}
	f := cfg.FFmpeg
	f.CreateTemp, f.Logger = createTemp, log
	enc, err := encode.NewFFmpeg(f)
	if err != nil {
		return nil, "", err
	}
	return enc, enc.Config().VideoCodec, nil
}

func run(ctx context.Context, cfg Config) error {
	log := newLogger(cfg.Log, os.Stderr)
	// Registered first: a signal from now on means a graceful stop.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	// Certificates and tokens are read first: a bad file stops start-up
	// before the store is locked.
	creds, auth, err := serverSecurity(cfg)
	if err != nil {
		return err
	}
	peer, err := peerSecurity(cfg)
	if err != nil {
		return err
	}
	storeOpts := cfg.Storage.Options
	storeOpts.Logger, storeOpts.Lock = log, true
	store, err := storage.Open(storeOpts)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	enc, codec, err := newEncoder(cfg, func(pattern string) (encode.TempFile, error) {
		t, err := store.CreateTemp(pattern)
		if err != nil {
			return nil, err // not a nil *TempFile in an interface
		}
		return t, nil
	}, log)
	if err != nil {
		return fmt.Errorf("encoder: %w", err)
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srvCfg := cfg.Server
	if srvCfg.WorkerID == "" {
		srvCfg.WorkerID = lis.Addr().String()
	}
	srvCfg.VideoCodec, srvCfg.Logger, srvCfg.Peer = codec, log, peer
	srv := grpcapi.NewServer(store, enc, srvCfg)

	memLimit := setMemoryLimit(srv, log)

	srvOpts := []grpcapi.Option{grpcapi.WithAuth(auth)}
	m := workerMetrics(cfg, srv, store, codec)
	if m != nil {
		srvOpts = append(srvOpts, m.ServerOptions()...)
	}
	if creds != nil {
		srvOpts = append(srvOpts, grpcapi.WithCredentials(creds))
	}
	gs := grpc.NewServer(srv.GRPCOptions(srvOpts...)...)
	srv.Register(gs)
	healthSrv := health.NewServer()
	healthpb.RegisterHealthServer(gs, healthSrv)
	reflection.Register(gs)

	if err := srv.Healthy(ctx); err != nil {
		log.Warn("worker starts unhealthy", "reason", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waitMetrics, err := startMetrics(ctx, cfg.Metrics, m, gs, log)
	if err != nil {
		return err
	}
	// Metrics are served while chunks drain; deferred last, cancel ends
	// them before waitMetrics waits.
	defer waitMetrics()
	defer cancel()
	go srv.Run(ctx)
	go watchHealth(ctx, srv, healthSrv, min(5*time.Second, srvCfg.HealthTTL), log)
	stopScrubber := startScrubber(ctx, srv, cfg.Storage)
	defer stopScrubber()

	tlsMode, authMode := securityMode(cfg)
	warnInsecure(log, cfg) // before "listening": whoever waits for that line has seen it
	log.Info("videoshard worker listening", "addr", lis.Addr().String(), "worker_id", srvCfg.WorkerID,
		"encoder", cfg.Encoder, "codec", codec, "store", store.Root(), "tls", tlsMode, "auth", authMode,
		"memory_limit", memLimit)

	serveErr := make(chan error, 1)
	go func() { serveErr <- gs.Serve(srv.Listener(lis)) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case sig := <-signals:
		log.Info("shutting down: finishing in-flight chunks", "signal", sig.String(), "grace", cfg.ShutdownGrace)
	}

	srv.SetDraining()
	stopScrubber()
	healthSrv.Shutdown() // NOT_SERVING for every service
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(cfg.ShutdownGrace):
		log.Warn("grace period over: cancelling in-flight chunks")
		gs.Stop()
	case sig := <-signals:
		log.Warn("second signal: cancelling in-flight chunks", "signal", sig.String())
		gs.Stop()
	}
	<-stopped
	if err := <-serveErr; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("worker stopped")
	return nil
}

// memoryHeadroom is what the worker may use beyond its start-up memory and
// its admitted messages: buffers of the calls with small messages, the
// index of chunks stored since.
const memoryHeadroom = 64 << 20

// setMemoryLimit sets Go's soft memory limit to the worker's worst case,
// its memory at start-up (the store's index loaded) plus memoryHeadroom
// plus the admitted messages' (srv.MessageMemory), so that the collector
// reclaims garbage before it adds to that; unless GOMEMLIMIT sets one. It
// returns the limit in force.
func setMemoryLimit(srv *grpcapi.Server, log *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	rss, err := sysinfo.RSSBytes()
	if err != nil {
		log.Warn("no soft memory limit: cannot read own memory", "err", err)
		return debug.SetMemoryLimit(-1)
	}
	limit := rss + memoryHeadroom + srv.MessageMemory()
	debug.SetMemoryLimit(limit)
	return limit
}

// watchHealth keeps the standard health service in step with the worker's
// dependencies, looking every interval (run passes 5 s, or health.ttl when
// shorter, so a new check's result shows there within one TTL).
func watchHealth(ctx context.Context, srv *grpcapi.Server, hs *health.Server, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last healthpb.HealthCheckResponse_ServingStatus
	for {
		st := healthpb.HealthCheckResponse_SERVING
		if err := srv.Healthy(ctx); err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
			if st != last {
				log.Warn("worker unhealthy", "reason", err)
			}
		}
		if st != last {
			hs.SetServingStatus("", st)
			hs.SetServingStatus(pb.VideoProcessingService_ServiceDesc.ServiceName, st)
			last = st
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
