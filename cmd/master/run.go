package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/videoshard/videoshard/internal/fsutil"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// errUnhealthy is returned by health when the worker says it is unhealthy.
var errUnhealthy = errors.New("worker is unhealthy")

// connect dials the configured worker. Every subcommand that talks to the
// worker starts here.
func connect(ctx context.Context, cfg Config) (*client.Client, error) {
	return client.Dial(ctx, cfg.Worker, cfg.dialOptions())
}

func runHealth(ctx context.Context, c *client.Client, p printer) error {
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if err := p.health(h); err != nil {
		return err
	}
	if !h.GetIsHealthy() {
		return fmt.Errorf("%w: %s", errUnhealthy, h.GetMessage())
	}
	return nil
}

// processRequest is what process-chunk sends.
type processRequest struct {
	VideoID    string
	ChunkIndex int32
	File       string
	Encoding   *pb.EncodingOptions // nil: the worker's defaults
}

func runProcessChunk(ctx context.Context, c *client.Client, p printer, req processRequest) error {
	resp, err := c.ProcessFile(ctx, req.VideoID, req.ChunkIndex, req.File, req.Encoding)
	if err != nil {
		return err
	}
	return p.processed(resp)
}

func runList(ctx context.Context, c *client.Client, p printer, videoID string) error {
	resp, err := c.List(ctx, videoID)
	if err != nil {
		return err
	}
	return p.list(resp)
}

func runMetadata(ctx context.Context, c *client.Client, p printer, videoID string) error {
	resp, err := c.Metadata(ctx, videoID)
	if err != nil {
		return err
	}
	return p.metadata(resp)
}

// runGetShard downloads a shard into output atomically: output appears
// only once every byte has arrived and matched the checksum.
func runGetShard(ctx context.Context, c *client.Client, p printer, req *pb.GetShardRequest, output string) error {
	var (
		meta *pb.ChunkMetadata
		n    int64
	)
	err := fsutil.WriteFileAtomic(output, func(w io.Writer) error {
		var err error
		meta, n, err = c.DownloadShard(ctx, req, w, client.ShardWant{MaxSize: fsutil.RoomFor(output)})
		return err
	})
	if err != nil {
		return err
	}
	return p.shard(output, n, meta)
}
