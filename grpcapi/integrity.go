package grpcapi

import (
	"context"
	"errors"
	"time"

	"github.com/videoshard/videoshard/storage"
)

// CorruptedShards is the number of shards found not to match their
// metadata since the server started, by reads and by Scrub.
func (s *Server) CorruptedShards() int64 { return s.corrupted.Load() }

// corrupt handles a shard version m found not to match its metadata: it is
// counted, logged, and quarantined, so the next request gets NotFound rather
// than the same bad bytes. Only the version read is quarantined: if the
// chunk was replaced meanwhile, the replacement stays.
func (s *Server) corrupt(m storage.Metadata, reason error) {
	s.corrupted.Add(1)
	s.log.Error("corrupted shard detected", "video_id", m.VideoID, "chunk", m.ChunkIndex,
		"location", m.ShardLocation, "reason", reason)
	err := s.store.QuarantineVersion(m, reason.Error())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Replaced or already quarantined by another reader.
	case err != nil:
		s.log.Error("cannot quarantine corrupted shard", "video_id", m.VideoID, "chunk", m.ChunkIndex, "err", err)
	}
}

// corruptOpen handles an error from OpenShard: a *storage.CorruptError is
// counted and quarantined like corruption found while reading, and becomes
// DataLoss.
func (s *Server) corruptOpen(err error) error {
	var ce *storage.CorruptError
	if !errors.As(err, &ce) {
		return err
	}
	s.corrupt(ce.Metadata, err)
	return &corruptedError{err}
}

// corruptedError marks an error as errCorrupted (DataLoss) and nothing
// else, whatever it wrapped (a missing shard also matches ErrNotFound).
type corruptedError struct{ err error }

func (e *corruptedError) Error() string { return e.err.Error() }
func (e *corruptedError) Unwrap() error { return errCorrupted }

// Scrub runs one storage.Store.Scrub, counts what it found as corruption
// and logs the report: one line per corrupt shard and a summary.
func (s *Server) Scrub(ctx context.Context, opts storage.ScrubOptions) (storage.ScrubReport, error) {
	rep, err := s.store.Scrub(ctx, opts)
	s.corrupted.Add(int64(len(rep.Corrupt)))
	for _, c := range rep.Corrupt {
		s.log.Error("scrub: corrupted shard quarantined", "video_id", c.VideoID, "chunk", c.ChunkIndex,
			"reason", c.Reason, "quarantine", c.QuarantineDir)
	}
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
