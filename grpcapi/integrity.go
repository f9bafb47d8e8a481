package grpcapi

import (
	"context"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// CorruptedShards is the number of shards found not to match their
// metadata since the server started, by reads and by Scrub: the store's
// count (storage.Store.Corrupted), which finds, counts and quarantines
// them.
func (s *Server) CorruptedShards() int64 { return s.store.Corrupted() }

// Scrub runs one storage.Store.Scrub and logs its summary; the store logs
// each corrupt shard it quarantines.
func (s *Server) Scrub(ctx context.Context, opts storage.ScrubOptions) (storage.ScrubReport, error) {
	rep, err := s.store.Scrub(ctx, opts)
	level := s.log.Info
	if len(rep.Corrupt) > 0 || err != nil {
		level = s.log.Warn
	}
	args := []any{"checked", rep.Checked, "bytes", rep.Bytes, "corrupt", len(rep.Corrupt),
		"skipped", rep.Skipped, "duration", rep.Duration.Round(time.Millisecond)}
	if err != nil {
		args = append(args, "err", err)
	}
	level("scrub done", args...)
	return rep, err
}

// RunScrubber scrubs the store every interval (the first one interval after
// the call; each next one interval after the previous one ended) until ctx
// ends. A non-positive interval returns at once.
func (s *Server) RunScrubber(ctx context.Context, interval time.Duration, opts storage.ScrubOptions) {
	if interval <= 0 {
		return
	}
	s.log.Info("background scrub on", "interval", interval, "bytes_per_second", opts.BytesPerSecond)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.Scrub(ctx, opts) // logged; a failure is retried at the next interval
		t.Reset(interval)
	}
}
