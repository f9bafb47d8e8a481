package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/videoshard/videoshard/internal/chunkid"
	"github.com/videoshard/videoshard/master/client"
)

// deleteResult is one worker's answer to delete, for the table and --json.
type deleteResult struct {
	Worker     string `json:"worker"`
	Chunks     int    `json:"deleted_chunks"`
	FreedBytes int64  `json:"freed_bytes"`
	Error      string `json:"error,omitempty"`
}

func (a *app) deleteCmd() *cobra.Command {
	var (
		videoID    string
		chunkIndex int32
		workers    string
	)
	cmd := &cobra.Command{
		Use:   "delete --video-id ID [--chunk-index N] [--workers HOST:PORT,...]",
		Short: "Delete a video's shards (or one chunk's) from the worker, or from each of --workers",
		Long: `Delete a video's shards and metadata from the worker (--worker), or from each
worker of --workers. With --chunk-index only that chunk. Deleting what a
worker does not hold is no error (it deletes nothing); a chunk being
written is refused (FailedPrecondition) and left as it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := chunkid.ValidateVideoID(videoID); err != nil {
				return fmt.Errorf("--video-id: %w", err)
			}
			one := cmd.Flags().Changed("chunk-index")
			if one {
				if err := checkChunk(videoID, chunkIndex); err != nil {
					return err
				}
			}
			cfg, err := loadConfig(a.v)
			if err != nil {
				return err
			}
			addrs := splitList(workers)
			if len(addrs) == 0 {
				addrs = []string{cfg.Worker}
			}
			ctx := cmd.Context()
			if cfg.Timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
				defer cancel()
			}
			var (
				results []deleteResult
				errs    []error
			)
			for _, addr := range addrs {
				r := deleteResult{Worker: addr}
				err := deleteOn(ctx, addr, cfg, videoID, chunkIndex, one, &r)
				if err != nil {
					r.Error = err.Error()
					errs = append(errs, fmt.Errorf("%s: %w", addr, err))
				}
				results = append(results, r)
			}
			if err := a.printDeletes(results); err != nil {
				return err
			}
			return failed(errors.Join(errs...))
		},
	}
	f := cmd.Flags()
	f.StringVar(&videoID, "video-id", "", "the video whose shards to delete")
	f.Int32Var(&chunkIndex, "chunk-index", 0, "delete only this chunk")
	f.StringVar(&workers, "workers", "", "delete on each of these workers, HOST:PORT[,HOST:PORT...] (default: --worker)")
	mustRequire(cmd, "video-id")
	return cmd
}

func deleteOn(ctx context.Context, addr string, cfg Config, videoID string, chunkIndex int32, one bool, r *deleteResult) error {
	c, err := client.Dial(ctx, addr, cfg.dialOptions())
	if err != nil {
		return err
	}
	defer c.Close()
	if one {
		resp, err := c.DeleteShard(ctx, videoID, chunkIndex)
		if err != nil {
			return err
		}
		if resp.GetDeleted() {
			r.Chunks = 1
		}
		r.FreedBytes = resp.GetFreedBytes()
		return nil
	}
	resp, err := c.DeleteVideo(ctx, videoID)
	if err != nil {
		return err
	}
	r.Chunks, r.FreedBytes = int(resp.GetDeletedChunks()), resp.GetFreedBytes()
	return nil
}

func (a *app) printDeletes(results []deleteResult) error {
	p := printer{w: a.stdout, asJSON: a.v.GetBool("json")}
	if p.asJSON {
		return p.writeJSON(results)
	}
	rows := make([][]string, 0, len(results))
	for _, r := range results {
		outcome := fmt.Sprintf("%d chunks deleted, %s freed", r.Chunks, byteCount(r.FreedBytes))
		if r.Error != "" {
			outcome = "FAILED: " + r.Error
		}
		rows = append(rows, []string{r.Worker, outcome})
	}
	return p.table([]string{"WORKER", "RESULT"}, rows)
}
