package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// Scrub re-reads every committed shard, compares its size, SHA-256 and
// CRC-32C (when recorded) with its metadata (and checks that the metadata
// file is still there), and quarantines each chunk that does not match (see
// Quarantine), so that it is no longer listed or served; each one is
// counted in Corrupted. Reading is paced to opts.BytesPerSecond. Chunks
// committed after Scrub started are not checked; chunks replaced while it
// runs are skipped, and a version found corrupt is quarantined only if it
// is still the committed one, so a concurrent replace is never undone.
// Readers and writers are not blocked: no lock is held while a shard is
// read.
//
// Unlike a VerifiedReader, which trusts the CRC-32C, Scrub always checks
// the SHA-256: it is the shard's identity, what clients verify, and a
// scrub is paced, so the cost is the disk's, not the CPU's.
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
			res, err := s.scrubChunk(ctx, m, buf, p)
			rep.Bytes += res.bytes
			switch {
			case errors.Is(err, errVersionGone):
				rep.Skipped++
			case err != nil && ctx.Err() != nil:
				rep.Duration = time.Since(start)
				return rep, fmt.Errorf("scrub: %w", ctx.Err())
			case err != nil:
				rep.Skipped++
				errs = append(errs, fmt.Errorf("%s chunk %d: %w", m.VideoID, m.ChunkIndex, err))
			case res.corrupt == nil:
				rep.Checked++
			case !res.corrupt.quarantine.taken:
				// Replaced (or quarantined by a reader) since it was read:
				// the corrupt version is no longer served, and whoever
				// took it out counted it.
				s.log.Warn("scrub: corrupt version already replaced", "video_id", m.VideoID,
					"chunk_index", m.ChunkIndex, "reason", res.corrupt.Reason)
				rep.Skipped++
			default:
				if res.checked {
					rep.Checked++
				}
				q := res.corrupt.quarantine
				if q.err != nil {
					errs = append(errs, q.err)
				}
				rep.Corrupt = append(rep.Corrupt, ScrubFinding{
					VideoID: m.VideoID, ChunkIndex: m.ChunkIndex, Reason: res.corrupt.Reason, QuarantineDir: q.dir,
				})
			}
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

// scrubResult is what scrubbing one chunk found.
type scrubResult struct {
	bytes   int64 // shard bytes read
	checked bool  // its shard was read to the end
	// corrupt says what is wrong with it, nil if nothing; the version has
	// been taken out of the store (see quarantineOutcome).
	corrupt *CorruptError
}

// scrubChunk reads chunk m (the version indexed when the scrub started)
// through a VerifiedReader held to the full check, paced by p. An error
// means it could not be checked.
func (s *Store) scrubChunk(ctx context.Context, m Metadata, buf []byte, p *pacer) (res scrubResult, err error) {
	r, err := s.openVerified(chunkKey{m.VideoID, m.ChunkIndex}, &m, checkFull, "scrub")
	if errors.As(err, &res.corrupt) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	defer r.Close()
	defer func() { res.bytes = r.d.n }()
	if _, err := s.metaDir.lstat(metadataName(m.VideoID, m.ChunkIndex)); errors.Is(err, fs.ErrNotExist) {
		res.corrupt = r.fail(&CorruptError{Metadata: r.m, Kind: CorruptFile, Reason: "metadata file is missing"})
		return res, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			if err := p.wait(ctx, k); err != nil {
				return res, err
			}
		}
		switch {
		case rerr == io.EOF:
			res.checked = true
			return res, nil
		case errors.As(rerr, &res.corrupt):
			res.checked = res.corrupt.Kind != CorruptRead
			return res, nil
		case rerr != nil:
			return res, rerr
		}
	}
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
