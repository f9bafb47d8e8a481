package main

import (
	"errors"
	"fmt"
	"io"
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
			cfg, err := offlineConfig(v, configFile, root)
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
	opts.Reindex, opts.Index = true, storage.IndexSQLite
	start := time.Now()
	store, err := openOffline(opts, "reindexing")
	if err != nil {
		return err
	}
	u := store.Usage()
	if err := store.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "reindexed %s: %d chunks, %d shard bytes, in %v\n", store.Root(), u.Chunks, u.Bytes,
		time.Since(start).Round(time.Millisecond))
	return nil
}
