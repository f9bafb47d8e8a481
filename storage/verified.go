package storage

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
)

// VerifiedReader reads one committed version of a shard and verifies it
// against its metadata as the bytes go by, as minio's bitrot reader does,
// so that callers above the store only copy bytes. Reads check the size and
// the CRC-32C when the metadata records one (chunks committed before it was
// added: the SHA-256).
//
// When the last recorded byte has been read, the reader makes sure nothing
// follows it and compares. If the shard matches, that Read returns io.EOF
// (with its bytes). If not, or if reading fails, the version is taken out
// of the store (see QuarantineVersion), counted (Corrupted) and logged, and
// that Read and every later one return a *CorruptError (matching
// ErrCorrupt) saying what was wrong, without the last read's bytes: a
// caller that only copies never passes on a whole corrupt shard. A reader
// closed before the end has verified nothing and does neither.
//
// A VerifiedReader is not safe for concurrent use.
type VerifiedReader struct {
	s    *Store
	f    *os.File // nil once closed
	m    Metadata
	d    *digest
	by   string // who reads, for the quarantine's reason and log
	key  chunkKey
	left int64 // bytes the metadata says are still to come
	// err, once set, is what every Read returns: io.EOF after a verified
	// end, a *CorruptError, or errReaderClosed.
	err error
}

var errReaderClosed = fmt.Errorf("read shard: %w", os.ErrClosed)

// OpenVerified opens the committed version of a chunk for a verified read;
// the caller closes the reader. The file is the version Metadata describes,
// even while the chunk is being replaced (see OpenShard).
//
// It returns an error wrapping ErrInvalid for a bad id or index, and one
// wrapping ErrNotFound if the chunk is not committed. A shard found not to
// match already when it is opened (missing, not a regular file, reached
// through a symlink, another size) is handled as a reader handles
// corruption: taken out of the store, counted, and returned as a
// *CorruptError (matching ErrNotFound too when the file is missing).
func (s *Store) OpenVerified(videoID string, chunkIndex int) (*VerifiedReader, error) {
	if err := validateKey(videoID, chunkIndex); err != nil {
		return nil, fmt.Errorf("open shard: %w", err)
	}
	r, err := s.openVerified(chunkKey{videoID, chunkIndex}, nil, checkFast, "read")
	if err != nil {
		return nil, fmt.Errorf("open shard: %w", err)
	}
	return r, nil
}

// Verify reads a committed shard to its end through a VerifiedReader and
// returns the metadata of the version it verified. Its errors are
// OpenVerified's and the reader's: a corrupt shard has been taken out of
// the store when it returns.
func (s *Store) Verify(videoID string, chunkIndex int) (Metadata, error) {
	r, err := s.OpenVerified(videoID, chunkIndex)
	if err != nil {
		return Metadata{}, err
	}
	defer r.Close()
	if _, err := r.WriteTo(io.Discard); err != nil {
		return Metadata{}, fmt.Errorf("verify: %w", err)
	}
	return r.Metadata(), nil
}

// openVerified opens a reader of key's committed version, checked at level
// and reporting corruption as found by by. With want set, the committed
// version must be want's: errVersionGone if it was replaced or removed.
func (s *Store) openVerified(key chunkKey, want *Metadata, level checkLevel, by string) (*VerifiedReader, error) {
	f, m, err := s.openCommitted(key, want)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		return nil, s.foundCorrupt(ce, by)
	case err != nil:
		return nil, err
	}
	if by != "scrub" { // a scrub is not a use: eviction goes by what clients read
		s.index.touch(key, s.now().UnixNano())
	}
	return &VerifiedReader{s: s, f: f, m: m, d: verifierFor(m, level), by: by, key: key, left: m.EncodedSize}, nil
}

// openCommitted opens the shard of key's committed version under the
// chunk's lock, so that the file and the metadata it returns agree. With
// want set, the version must be want's (else errVersionGone); without, a
// chunk not committed is ErrNotFound. A shard that does not match at the
// open is a *CorruptError (see openVersion).
func (s *Store) openCommitted(key chunkKey, want *Metadata) (*os.File, Metadata, error) {
	unlock := s.locks.lock(key)
	defer unlock()
	m, ok, err := s.get(key)
	switch {
	case err != nil:
		return nil, Metadata{}, err
	case want != nil && (!ok || !sameVersion(m, *want)):
		return nil, Metadata{}, errVersionGone
	case !ok:
		return nil, Metadata{}, fmt.Errorf("%s chunk %d: %w", key.video, key.chunk, ErrNotFound)
	}
	f, err := s.openVersion(m)
	if err != nil {
		return nil, Metadata{}, err
	}
	s.reading.add(key, 1)
	return f, m, nil
}

// Metadata returns the metadata of the version being read.
func (r *VerifiedReader) Metadata() Metadata { return cloneMetadata(r.m) }

// Read reads up to len(p) bytes of the shard; see VerifiedReader for what
// happens at its end.
func (r *VerifiedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Asking for one byte more than promised shows a longer file.
	if int64(len(p)) > r.left {
		p = p[:r.left+1]
	}
	n, err := r.readHashed(p)
	if int64(n) > r.left {
		return 0, r.fail(r.longer())
	}
	r.left -= int64(n)
	switch {
	case err == io.EOF && r.left > 0:
		return 0, r.fail(sizeMismatch(r.m, r.d.n))
	case err != nil && err != io.EOF:
		return 0, r.fail(r.readError(err))
	case r.left > 0:
		return n, nil
	}
	if err == nil { // the promised bytes are in: nothing may follow them
		var one [1]byte
		k, perr := r.f.Read(one[:])
		switch {
		case k > 0:
			return 0, r.fail(r.longer())
		case perr != nil && perr != io.EOF:
			return 0, r.fail(r.readError(perr))
		}
	}
	if ce := r.d.mismatch(r.m); ce != nil {
		return 0, r.fail(ce)
	}
	r.close()
	r.err = io.EOF
	return n, io.EOF
}

// overlapPiece is the piece a large read is split into: each piece is
// hashed on another goroutine while the next is read, so that the hash
// costs no time beside the copy from the page cache.
const overlapPiece = 1 << 20

// readHashed reads into p as much as the file gives, and hashes it.
func (r *VerifiedReader) readHashed(p []byte) (int, error) {
	if len(p) < 2*overlapPiece {
		n, err := r.f.Read(p)
		r.d.Write(p[:n])
		return n, err
	}
	var hashing sync.WaitGroup // one piece at a time: the digest is sequential
	defer hashing.Wait()
	n := 0
	for n < len(p) {
		k, err := r.f.Read(p[n:min(n+overlapPiece, len(p))])
		if k > 0 {
			piece := p[n : n+k]
			hashing.Wait()
			hashing.Go(func() { r.d.Write(piece) })
			n += k
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadAll reads the rest of the shard into one new slice and returns it
// verified: the whole shard, or an error.
func (r *VerifiedReader) ReadAll() ([]byte, error) { return r.ReadAllInto(nil) }

// ReadAllInto is ReadAll into buf's storage when it has room for the rest
// of the shard and a byte more (to see a longer file), else into a new
// slice.
func (r *VerifiedReader) ReadAllInto(buf []byte) ([]byte, error) {
	if int64(cap(buf)) > r.left {
		buf = buf[:r.left+1]
	} else {
		buf = make([]byte, r.left+1)
	}
	n := 0
	if r.d.n == 0 && r.d.withCRC && r.d.sha == nil && r.left >= parallelReadBytes {
		if err := r.readHalves(buf[:r.left]); err != nil {
			return nil, err
		}
		n = len(buf) - 1
	}
	for {
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

const (
	// parallelReadBytes is the size from which ReadAll reads a shard held
	// to its CRC-32C in two halves at once, each checksummed by the
	// goroutine that reads it, while the bytes are in its core's cache,
	// and the two CRCs combined: the copy out of the page cache and the
	// checksum take both cores.
	parallelReadBytes = 8 << 20
	// halfPiece is each half's read size: small enough to stay in the
	// cache until it is checksummed.
	halfPiece = 256 << 10
)

// readHalves reads a whole shard, of which nothing was read yet, into p,
// which is its recorded size, in two halves at once (see
// parallelReadBytes), and leaves the file's offset after them; Read then
// makes sure nothing follows and compares.
func (r *VerifiedReader) readHalves(p []byte) error {
	parts := [2][]byte{p[:len(p)/2], p[len(p)/2:]}
	var crcs [2]uint32
	var got [2]int
	var errs [2]error
	var wg sync.WaitGroup
	for i, part := range parts {
		off := int64(i * len(parts[0]))
		wg.Go(func() {
			for got[i] < len(part) {
				k, err := r.f.ReadAt(part[got[i]:min(got[i]+halfPiece, len(part))], off+int64(got[i]))
				crcs[i] = crc32.Update(crcs[i], castagnoli, part[got[i]:got[i]+k])
				got[i] += k
				if err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && err != io.EOF {
			return r.fail(r.readError(err))
		}
	}
	if n := got[0] + got[1]; n != len(p) {
		r.d.n = int64(n)
		return r.fail(sizeMismatch(r.m, int64(n)))
	}
	r.d.crc = crc32cCombine(crcs[0], crcs[1], int64(len(parts[1])))
	r.d.n = int64(len(p))
	r.left = 0
	if _, err := r.f.Seek(int64(len(p)), io.SeekStart); err != nil {
		return r.fail(r.readError(err))
	}
	return nil
}

// WriteTo copies the shard to w, verified as Read verifies it, and
// returns nil at a verified end. io.Copy uses it, with read sizes that
// cost fewer system calls than its own.
func (r *VerifiedReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(hashBufferSize, r.left+1))
	var written int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			k, werr := w.Write(buf[:n])
			written += int64(k)
			if werr != nil {
				return written, werr
			}
		}
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
	}
}

// Close releases the file. Closed before the end, the reader has verified
// nothing: the shard is neither quarantined nor counted.
func (r *VerifiedReader) Close() error {
	err := r.close()
	if r.err == nil {
		r.err = errReaderClosed
	}
	return err
}

func (r *VerifiedReader) close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	r.s.reading.add(r.key, -1)
	return err
}

// fail ends the read on the corruption ce: the version is taken out of the
// store, and ce is what every later Read returns.
func (r *VerifiedReader) fail(ce *CorruptError) *CorruptError {
	r.close()
	ce = r.s.foundCorrupt(ce, r.by)
	r.err = ce
	return ce
}

// longer is the error for a shard found to hold more than its recorded
// size, with its current size when that can be had.
func (r *VerifiedReader) longer() *CorruptError {
	size := r.m.EncodedSize + 1
	if fi, err := r.f.Stat(); err == nil && fi.Size() > r.m.EncodedSize {
		size = fi.Size()
	}
	return sizeMismatch(r.m, size)
}

func (r *VerifiedReader) readError(err error) *CorruptError {
	return &CorruptError{Metadata: r.m, Kind: CorruptRead,
		Reason: fmt.Sprintf("read error after %d bytes: %v", r.d.n, err)}
}
