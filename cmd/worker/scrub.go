package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/storage"
)

// newScrubCmd is `worker scrub`: one offline integrity check of the store a
// worker config names.
func newScrubCmd(v *viper.Viper) *cobra.Command {
	var configFile, root, rate string
	cmd := &cobra.Command{
		Use:   "scrub",
		Short: "verify every shard of the store against its checksum and quarantine corrupt ones, then exit",
		Long: `scrub opens the store the config names (storage.root), re-reads every committed
shard, compares its size and SHA-256 with its metadata, and moves each corrupt
chunk into <root>/.quarantine. It prints one line per corrupt chunk and the
totals, and exits 1 if anything was corrupt, 0 otherwise.

Run it while the worker is stopped: the store takes a lock file (<root>/.lock),
so scrub refuses to open a store a running worker holds (and a worker refuses
to start while scrub runs). A running worker scrubs itself when
storage.scrub_interval is set.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := offlineConfig(v, configFile, root)
			if err != nil {
				return err
			}
			opts := cfg.Storage.Scrub
			if rate != "" {
				if opts.BytesPerSecond, err = parseSize(rate); err != nil || opts.BytesPerSecond < 0 {
					return fmt.Errorf("--bytes-per-second: %q is not a size like 50MiB", rate)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return scrubOffline(ctx, cmd.OutOrStdout(), cfg.Storage.Options, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML config file of the worker whose store to scrub")
	f.StringVar(&root, "storage-root", "", "shard store directory (key storage.root)")
	f.StringVar(&rate, "bytes-per-second", "", "read rate limit like 50MiB; 0 is unlimited (default: key storage.scrub_bytes_per_second)")
	return cmd
}

// errCorruptFound is scrub's failure when it found corruption.
var errCorruptFound = errors.New("corrupt shards found and quarantined")

// scrubOffline opens the store (taking its lock), scrubs it once, and
// writes the report to out.
func scrubOffline(ctx context.Context, out io.Writer, storeOpts storage.Options, opts storage.ScrubOptions) error {
	store, err := openOffline(storeOpts, "scrubbing")
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := store.Scrub(ctx, opts)
	for _, c := range rep.Corrupt {
		where := "could not be quarantined"
		if c.QuarantineDir != "" {
			where = "quarantined in " + c.QuarantineDir
		}
		fmt.Fprintf(out, "CORRUPT %s chunk %d: %s (%s)\n", c.VideoID, c.ChunkIndex, c.Reason, where)
	}
	fmt.Fprintf(out, "scrubbed %s: %d chunks checked, %d bytes read, %d corrupt, %d skipped, in %v\n",
		store.Root(), rep.Checked, rep.Bytes, len(rep.Corrupt), rep.Skipped, rep.Duration.Round(time.Millisecond))
	switch {
	case err != nil:
		return err
	case len(rep.Corrupt) > 0:
		return fmt.Errorf("%d %w", len(rep.Corrupt), errCorruptFound)
	}
	return nil
}

// startScrubber runs the background scrubber (if storage.scrub_interval is
// set) until ctx ends or stop is called; stop waits for it to return and may
// be called more than once.
func startScrubber(ctx context.Context, srv *grpcapi.Server, cfg StorageConfig) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.RunScrubber(ctx, cfg.ScrubInterval, cfg.Scrub)
	}()
	return func() {
		cancel()
		<-done
	}
}

// offlineConfig is the config of a command run on a stopped worker's
// store (scrub, reindex): configFile's, with root (--storage-root) over
// storage.root when set.
func offlineConfig(v *viper.Viper, configFile, root string) (Config, error) {
	if root != "" {
		v.Set("storage.root", root)
	}
	return configFrom(v, configFile)
}

// openOffline opens a stopped worker's store, taking its lock, logging to
// stderr; doing says what for, in the error when a worker holds it.
func openOffline(opts storage.Options, doing string) (*storage.Store, error) {
	opts.Logger, opts.Lock = slog.New(slog.NewTextHandler(os.Stderr, nil)), true
	store, err := storage.Open(opts)
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("%w: stop the worker using %s before %s it", err, opts.Root, doing)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return store, nil
}
