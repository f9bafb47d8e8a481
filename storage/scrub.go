package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// ScrubOptions configure Scrub. The zero value scrubs at full speed.
type ScrubOptions struct {
	// BytesPerSecond caps the rate at which shards are read, averaged over
	// the whole scrub, so that a scrub does not starve the encoder and
	// readers of disk bandwidth; 0 (or negative) means no limit.
	BytesPerSecond int64
}

// ScrubReport is what one Scrub found.
type ScrubReport struct {
	// Checked is the number of chunks whose shard was read to the end and
	// compared with its metadata, corrupt ones included.
	Checked int
	// Bytes is the number of shard bytes read.
	Bytes int64
	// Corrupt lists the chunks found not to match their metadata, in the
	// order found (videos and chunks sorted).
	Corrupt []ScrubFinding
	// Skipped counts chunks that were replaced or quarantined by someone
	// else while the scrub ran, or could not be opened for a reason that is
	// not corruption (see the error Scrub returns): they were not checked.
	Skipped int
	// Duration is how long the scrub took.
	Duration time.Duration
}

// ScrubFinding is one corrupt chunk.
type ScrubFinding struct {
	VideoID    string
	ChunkIndex int
	// Reason says what did not match: the size, the checksum, a read
	// error, a missing shard or metadata file.
	Reason string
	// QuarantineDir is where the chunk's files went; empty if moving them
	// failed (the chunk is still no longer served).
	QuarantineDir string
}

// Scrub re-reads every committed shard, compares its size and SHA-256 with
// its metadata (and checks that the metadata file is still there), and
// quarantines each chunk that does not match (see Quarantine), so that it
// is no longer listed or served. Reading is paced to opts.BytesPerSecond.
// Chunks committed after Scrub started are not checked; chunks replaced
// while it runs are skipped, and a version found corrupt is quarantined only
// if it is still the committed one, so a concurrent replace is never
// undone. Readers and writers are not blocked: no lock is held while a
// shard is read.
//
// Scrub returns the report with an error if ctx ends (the report then
// covers the chunks checked so far and the error wraps ctx.Err()), or if a
// shard could not be opened for a reason other than corruption or a
// corrupt chunk could not be quarantined; it goes on with the other chunks
// in those cases.
func (s *Store) Scrub(ctx context.Context, opts ScrubOptions) (ScrubReport, error) {
	start := time.Now()
	var rep ScrubReport
	p := &pacer{rate: opts.BytesPerSecond, start: start}
	buf := make([]byte, scrubBufferSize(opts.BytesPerSecond))
	videos, _ := s.List("") // never fails for ""
	var errs []error
	for _, v := range videos {
		for _, m := range v.Chunks {
			if err := ctx.Err(); err != nil {
				rep.Duration = time.Since(start)
				return rep, fmt.Errorf("scrub: %w", err)
			}
			reason, checked, err := s.scrubChunk(ctx, m, buf, p, &rep)
			switch {
			case errors.Is(err, errVersionGone):
				rep.Skipped++
				continue
			case err != nil && ctx.Err() != nil:
				rep.Duration = time.Since(start)
				return rep, fmt.Errorf("scrub: %w", ctx.Err())
			case err != nil:
				rep.Skipped++
				errs = append(errs, fmt.Errorf("%s chunk %d: %w", m.VideoID, m.ChunkIndex, err))
				continue
			}
			if checked {
				rep.Checked++
			}
			if reason == "" {
				continue
			}
			dir, qerr := s.quarantine(chunkKey{m.VideoID, m.ChunkIndex}, &m, "scrub: "+reason)
			if errors.Is(qerr, ErrNotFound) {
				// Replaced (or quarantined by a reader) since it was read:
				// the corrupt version is no longer served.
				s.log.Warn("scrub: corrupt version already replaced", "video_id", m.VideoID,
					"chunk_index", m.ChunkIndex, "reason", reason)
				rep.Skipped++
				if checked {
					rep.Checked--
				}
				continue
			}
			if qerr != nil {
				errs = append(errs, qerr)
			}
			rep.Corrupt = append(rep.Corrupt, ScrubFinding{
				VideoID: m.VideoID, ChunkIndex: m.ChunkIndex, Reason: reason, QuarantineDir: dir,
			})
		}
	}
	rep.Duration = time.Since(start)
	if len(errs) > 0 {
		return rep, fmt.Errorf("scrub: %w", errors.Join(errs...))
	}
	return rep, nil
}

// errVersionGone means the chunk scrubbed was replaced or removed meanwhile.
var errVersionGone = errors.New("version no longer committed")

// scrubChunk reads chunk m (the version indexed when the scrub started) and
// says what is wrong with it, "" if nothing. checked reports whether its
// shard was read to the end. An error means it could not be checked.
func (s *Store) scrubChunk(ctx context.Context, m Metadata, buf []byte, p *pacer, rep *ScrubReport) (reason string, checked bool, err error) {
	f, cur, err := s.openForScrub(m)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		return ce.Reason, false, nil
	case err != nil:
		return "", false, err
	}
	defer f.Close()
	m = cur
	if _, err := s.metaDir.lstat(metadataName(m.VideoID, m.ChunkIndex)); errors.Is(err, fs.ErrNotExist) {
		return "metadata file is missing", false, nil
	}

	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", false, err
		}
		k, rerr := f.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
			rep.Bytes += int64(k)
			if err := p.wait(ctx, k); err != nil {
				return "", false, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Sprintf("read error after %d bytes: %v", n, rerr), false, nil
		}
	}
	if n != m.EncodedSize {
		return fmt.Sprintf("shard holds %d bytes, its metadata says %d", n, m.EncodedSize), true, nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.ChecksumSHA256 {
		return fmt.Sprintf("shard has sha256 %s, its metadata says %s", got, m.ChecksumSHA256), true, nil
	}
	return "", true, nil
}

// openForScrub opens the shard of the committed version of m's chunk, if it
// is still m's version, under the chunk's lock (so the file and the
// metadata agree).
func (s *Store) openForScrub(m Metadata) (*os.File, Metadata, error) {
	unlock := s.locks.lock(chunkKey{m.VideoID, m.ChunkIndex})
	defer unlock()
	cur, ok := s.get(m.VideoID, m.ChunkIndex)
	if !ok || !sameVersion(cur, m) {
		return nil, Metadata{}, errVersionGone
	}
	f, err := s.openVersion(cur)
	return f, cur, err
}

// scrubBufferSize reads in pieces of about a tenth of a second's budget, so
// that pacing is smooth, between 4 KiB and 1 MiB.
func scrubBufferSize(rate int64) int {
	if rate <= 0 {
		return 1 << 20
	}
	return int(min(max(rate/10, 4<<10), 1<<20))
}

// pacer spreads reads so that, from start, no more than rate bytes per
// second on average have been read.
type pacer struct {
	rate  int64 // bytes per second; <= 0: no limit
	start time.Time
	done  int64
}

// wait accounts for n bytes just read and sleeps until they are within the
// budget, or until ctx ends.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return nil
	}
	p.done += int64(n)
	due := p.start.Add(time.Duration(float64(p.done) / float64(p.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
