package master

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/master/client"
)

// A job's shards on its workers: pinned while the job runs, so that a
// worker short of disk never evicts them, unpinned once the output is
// verified, and deleted then too when the job asks for cleanup.

// Cleanup is what deleting a job's shards did.
type Cleanup struct {
	Chunks  int   // chunks deleted, on all workers
	Bytes   int64 // shard bytes freed
	Workers int   // workers asked
	// Failed names the workers that could not delete, and why; their
	// chunks are left where they are.
	Failed []string
}

// workerCallTimeout bounds each call forEachWorker makes: a worker that
// never answers a pin, an unpin or a delete must not hold the job (or its
// end, after the output is written) for ever.
const workerCallTimeout = 30 * time.Second

// forEachWorker calls fn for each client, at most four at a time, each
// call under a context that ends after timeout, and returns the errors by
// worker address.
func forEachWorker(ctx context.Context, clients map[string]*client.Client, timeout time.Duration, fn func(context.Context, *client.Client) error) map[string]error {
	var (
		mu   sync.Mutex
		errs = map[string]error{}
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
	)
	for _, addr := range slices.Sorted(maps.Keys(clients)) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := fn(cctx, clients[addr]); err != nil {
				mu.Lock()
				errs[addr] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// pinJob pins videoID on every worker. A worker that cannot pin (an
// older one: Unimplemented) or cannot be reached is logged, not an error:
// pins keep a job safe from eviction, and a worker without eviction needs
// none.
func pinJob(ctx context.Context, log *slog.Logger, clients map[string]*client.Client, videoID string) {
	for addr, err := range forEachWorker(ctx, clients, workerCallTimeout, func(ctx context.Context, c *client.Client) error { return c.Pin(ctx, videoID) }) {
		logPinFailure(log, "pin", addr, videoID, err)
	}
}

// unpinJob is pinJob undone, once the job's output is verified.
func unpinJob(ctx context.Context, log *slog.Logger, clients map[string]*client.Client, videoID string) {
	for addr, err := range forEachWorker(ctx, clients, workerCallTimeout, func(ctx context.Context, c *client.Client) error { return c.Unpin(ctx, videoID) }) {
		logPinFailure(log, "unpin", addr, videoID, err)
	}
}

func logPinFailure(log *slog.Logger, verb, addr, videoID string, err error) {
	if status.Code(err) == codes.Unimplemented {
		log.Info("worker cannot "+verb+" videos (an older worker)", "worker", addr, "video", videoID)
		return
	}
	log.Warn("cannot "+verb+" the video on a worker", "worker", addr, "video", videoID, "err", err)
}

// busyRetry is how long cleanupJob waits before asking a worker again to
// delete a video one of whose chunks it is writing.
const busyRetry = 100 * time.Millisecond

// cleanupJob deletes videoID's chunks from every worker.
func cleanupJob(ctx context.Context, clients map[string]*client.Client, videoID string) Cleanup {
	var (
		mu  sync.Mutex
		out = Cleanup{Workers: len(clients)}
	)
	errs := forEachWorker(ctx, clients, workerCallTimeout, func(ctx context.Context, c *client.Client) error {
		resp, err := c.DeleteVideo(ctx, videoID)
		for status.Code(err) == codes.FailedPrecondition {
			// A chunk of the video is being written (a call the job
			// cancelled, a straggler's twin): the same call succeeds once
			// that is over, within the call's time.
			select {
			case <-time.After(busyRetry):
			case <-ctx.Done():
				return err
			}
			resp, err = c.DeleteVideo(ctx, videoID)
		}
		if err != nil {
			return err
		}
		mu.Lock()
		out.Chunks += int(resp.GetDeletedChunks())
		out.Bytes += resp.GetFreedBytes()
		mu.Unlock()
		return nil
	})
	for _, addr := range slices.Sorted(maps.Keys(errs)) {
		out.Failed = append(out.Failed, fmt.Sprintf("%s: %v", addr, errs[addr]))
	}
	return out
}
