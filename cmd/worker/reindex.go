package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/videoshard/videoshard/storage"
)

// newReindexCmd is `worker reindex`: rebuild the SQLite index of a stopped
// worker's store from its metadata files.
func newReindexCmd(v *viper.Viper) *cobra.Command {
	var configFile, root string
	cmd := &cobra.Command{
		Use:   "reindex",
		Short: "rebuild the store's index (<root>/.index) from its metadata files, then exit",
		Long: `reindex opens the store the config names (storage.root), reads every metadata
file as a worker does on a first start (quarantining what cannot be indexed),
writes a new SQLite index into <root>/.index and closes it cleanly. A worker
rebuilds the index by itself when it is missing, of another version, or was not
closed cleanly; reindex is for when it is suspected anyway.

Run it while the worker is stopped: it takes the store's lock (<root>/.lock),
so it refuses a store a running worker holds. With storage.index: memory there
is no index to rebuild.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if root != "" {
				v.Set("storage.root", root)
			}
			cfg, err := configFrom(v, configFile)
			if err != nil {
				return err
			}
			return reindex(cmd.OutOrStdout(), cfg.Storage.Options)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML config file of the worker whose store to reindex")
	f.StringVar(&root, "storage-root", "", "shard store directory (key storage.root)")
	return cmd
}

// reindex opens the store with a rebuild of its index (taking its lock),
// closes it, and writes what it holds to out.
func reindex(out io.Writer, opts storage.Options) error {
	if opts.Index == storage.IndexMemory {
		return errors.New("storage.index is memory: there is no index on disk to rebuild")
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts.Lock, opts.Reindex, opts.Index = true, true, storage.IndexSQLite
	start := time.Now()
	store, err := storage.Open(opts)
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("%w: stop the worker using %s before reindexing it", err, opts.Root)
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	u := store.Usage()
	if err := store.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "reindexed %s: %d chunks, %d shard bytes, in %v\n", store.Root(), u.Chunks, u.Bytes,
		time.Since(start).Round(time.Millisecond))
	return nil
}
