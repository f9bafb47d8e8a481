package grpcapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// ProcessChunk encodes a chunk sent whole in one message. A retry (the same
// video, chunk, input bytes and effective settings as the committed chunk)
// is answered from the store without encoding; see process.
func (s *Server) ProcessChunk(ctx context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	if err := validateChunkID(req.GetVideoId(), int64(req.GetChunkIndex())); err != nil {
		return nil, toStatus(err)
	}
	data := req.GetChunkData()
	if err := s.checkSize(int64(len(data))); err != nil {
		return nil, toStatus(err)
	}
	hasher := newInputHasher()
	hasher.add(data)
	res, err := s.process(ctx, &chunkRequest{
		videoID: req.GetVideoId(),
		index:   int(req.GetChunkIndex()),
		size:    int64(len(data)),
		in:      bytes.NewReader(data),
		data:    data,
		hasher:  hasher,
		opts:    encodeOptions(req.GetEncoding(), req.GetTrim(), req.GetWantPictureHashes()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return s.processResponse(res), nil
}

// UploadChunk is ProcessChunk for chunks of any size: a header message,
// then data frames, never held whole in memory.
func (s *Server) UploadChunk(stream pb.VideoProcessingService_UploadChunkServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return toStatus(invalidf("upload stream is empty: the first message must be a header"))
	}
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return toStatus(invalidf("the first upload message must be a header, not data"))
	}
	if err := validateChunkID(h.GetVideoId(), int64(h.GetChunkIndex())); err != nil {
		return toStatus(err)
	}
	if err := s.checkSize(h.GetTotalSize()); err != nil {
		return toStatus(err)
	}
	hasher := newInputHasher()
	in := &uploadReader{stream: stream, remaining: h.GetTotalSize(), total: h.GetTotalSize(), hasher: hasher}
	res, err := s.process(stream.Context(), &chunkRequest{
		videoID: h.GetVideoId(),
		index:   int(h.GetChunkIndex()),
		size:    h.GetTotalSize(),
		in:      in,
		hasher:  hasher,
		opts:    encodeOptions(h.GetEncoding(), h.GetTrim(), h.GetWantPictureHashes()),
	})
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(s.processResponse(res))
}

func validateChunkID(videoID string, chunkIndex int64) error {
	if err := storage.ValidateVideoID(videoID); err != nil {
		return err
	}
	return storage.ValidateChunkIndex(chunkIndex)
}

func (s *Server) checkSize(size int64) error {
	switch {
	case size <= 0:
		return invalidf("chunk is empty: send the chunk's bytes")
	case size > s.cfg.MaxChunkBytes:
		return fmt.Errorf("%w: chunk is %d bytes, the limit is %d", errTooLarge, size, s.cfg.MaxChunkBytes)
	}
	return nil
}

// chunkRequest is a validated ProcessChunk or UploadChunk.
type chunkRequest struct {
	videoID string
	index   int
	size    int64     // exact input size, announced or measured
	in      io.Reader // the input; its source feeds every byte to hasher
	data    []byte    // the whole input, when it came in one message
	hasher  *inputHasher
	opts    encode.Options
}

// processed is what process did: the committed chunk's metadata; stored
// when it was already in the store (nothing encoded), and the encode's
// picture hashes otherwise (when asked for and the encoder gave them).
type processed struct {
	meta          storage.Metadata
	stored        bool
	pictureHashes []byte
}

// process encodes a chunk into a pending shard and commits it, unless the
// store already holds its result: then it returns that chunk's metadata
// with stored set, and nothing is encoded or written.
//
// The store holds the result when the committed chunk has the same input
// size and SHA-256, the same encoder and the same effective settings (as the
// encoder resolves r.opts, see encode.SettingsResolver), and its shard still
// verifies against its checksum; a stored shard that does not is counted
// and quarantined, and the chunk is encoded anew. A unary chunk is hashed
// before anything else (about 45 ms for 64 MiB, and only when a stored chunk
// of that size and settings exists and the first MiB's SHA-256 matches
// the stored one). An upload cannot be hashed before it has been read: when
// such a stored chunk exists, its first MiB is read and compared; if it
// matches too (most likely a retry), the upload is spooled to the store's
// TempDir (under an encode slot), compared whole, and encoded from the spool
// on a mismatch; otherwise it streams into the encoder as usual. After an encode the comparison is made once more, against
// whatever was committed meanwhile (a duplicate request that raced this one,
// or an encoder that cannot tell its settings in advance), and a match is
// answered with the committed chunk, the new output discarded. Different
// bytes or settings replace the chunk through Commit: the old version stays
// readable until the new one is committed.
func (s *Server) process(ctx context.Context, r *chunkRequest) (processed, error) {
	defer r.hasher.finish()
	if r.opts.Trim != nil && !s.trimsFrames() {
		return processed{}, invalidf("this worker's encoder (%s) cannot trim frames", s.enc.Name())
	}
	settings, known := s.settingsFor(r.opts)
	if known && r.data != nil {
		m, ok := s.candidate(r, s.enc.Name(), settings)
		if ok && prefixMatches(m, r.data[:min(len(r.data), inputPrefixBytes)]) {
			sum := func() string {
				h := sha256.Sum256(r.data)
				return hex.EncodeToString(h[:])
			}
			if m, ok := s.storedResult(r, s.enc.Name(), settings, sum); ok {
				return processed{meta: m, stored: true}, nil
			}
		}
	}

	release, err := s.acquire(ctx)
	if err != nil {
		return processed{}, err
	}
	defer release()

	if known && r.data == nil {
		if m, ok := s.candidate(r, s.enc.Name(), settings); ok {
			prefix := make([]byte, min(r.size, inputPrefixBytes))
			if _, err := io.ReadFull(r.in, prefix); err != nil {
				return processed{}, fmt.Errorf("upload %s chunk %d: %w", r.videoID, r.index, err)
			}
			r.in = io.MultiReader(bytes.NewReader(prefix), r.in)
			if prefixMatches(m, prefix) {
				spool, err := s.spool(ctx, r.in)
				if err != nil {
					return processed{}, fmt.Errorf("upload %s chunk %d: %w", r.videoID, r.index, err)
				}
				defer spool.remove(s)
				sum := func() string { _, sum := r.hasher.finish(); return sum }
				if m, ok := s.storedResult(r, s.enc.Name(), settings, sum); ok {
					return processed{meta: m, stored: true}, nil
				}
				r.in = spool.f
			}
		}
	}

	pending, err := s.store.Create(r.videoID, r.index)
	if err != nil {
		return processed{}, err
	}
	defer pending.Abort()

	start := time.Now()
	res, err := s.enc.Encode(ctx, r.in, pending, r.opts)
	if err != nil {
		return processed{}, fmt.Errorf("encode %s chunk %d: %w", r.videoID, r.index, err)
	}
	// Only a fully read input was checked whole (an upload's size, its frames).
	if n, err := r.in.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("encoder %s left input unread", res.Encoder)
		}
		return processed{}, fmt.Errorf("encode %s chunk %d: %w", r.videoID, r.index, err)
	}
	encodeTime := res.EncodeTime
	if encodeTime == 0 {
		encodeTime = time.Since(start)
	}
	inputSize, inputSum := r.hasher.finish()
	if m, ok := s.storedResult(r, res.Encoder, res.Settings, func() string { return inputSum }); ok {
		return processed{meta: m, stored: true}, nil // the deferred Abort discards the new output
	}
	meta, err := pending.Commit(storage.Metadata{
		OriginalSize:        inputSize,
		WorkerID:            s.cfg.WorkerID,
		InputChecksumSHA256: inputSum,
		InputPrefixSHA256:   r.hasher.prefixSum(),
		Encoder:             res.Encoder,
		VideoCodec:          res.VideoCodec,
		AudioCodec:          res.AudioCodec,
		Container:           res.Container,
		EncoderSettings:     res.Settings,
		DurationSeconds:     res.DurationSeconds,
		FrameCount:          res.FrameCount,
		Width:               res.Width,
		Height:              res.Height,
		EncodeTimeSeconds:   encodeTime.Seconds(),
		Quality:             storedQuality(res),
	})
	if err != nil {
		return processed{}, fmt.Errorf("store %s chunk %d: %w", r.videoID, r.index, err)
	}
	s.log.Info("chunk stored", "video_id", r.videoID, "chunk", r.index,
		"original_size", meta.OriginalSize, "encoded_size", meta.EncodedSize,
		"encoder", meta.Encoder, "codec", meta.VideoCodec, "encode_time", encodeTime.Round(time.Millisecond))
	return processed{meta: meta, pictureHashes: res.PictureHashes}, nil
}

// storedQuality is the encode's measured quality as the store keeps it;
// nil when it was not measured.
func storedQuality(res encode.Result) *storage.Quality {
	q := res.Quality
	if q == nil || q.Frames <= 0 {
		return nil
	}
	return &storage.Quality{
		Frames:   int64(q.Frames),
		PSNRMin:  q.MinPSNR,
		PSNRMean: q.MeanPSNR,
		SSIMMin:  q.MinSSIM,
		SSIMMean: q.MeanSSIM,
	}
}

// settingsFor returns the effective settings an encode with opts would
// record, if the encoder can say so in advance and opts are valid (invalid
// ones are refused by Encode, with its error).
func (s *Server) settingsFor(opts encode.Options) (map[string]string, bool) {
	r, ok := s.enc.(encode.SettingsResolver)
	if !ok {
		return nil, false
	}
	settings, err := r.Settings(opts)
	if err != nil {
		return nil, false
	}
	return settings, true
}

// candidate returns the committed chunk r names if it could be r's result:
// same input size, encoder and settings, and an input checksum to compare
// with.
func (s *Server) candidate(r *chunkRequest, encoder string, settings map[string]string) (storage.Metadata, bool) {
	m, err := s.store.Lookup(r.videoID, r.index)
	if err != nil || m.InputChecksumSHA256 == "" || m.OriginalSize != r.size ||
		m.Encoder != encoder || !maps.Equal(m.EncoderSettings, settings) {
		return storage.Metadata{}, false
	}
	return m, true
}

// storedResult returns the committed chunk r names if it is r's result: a
// candidate whose input checksum is inputSum() (called only for a
// candidate) and whose shard still verifies. A shard that does not is
// handled as corruption (counted, quarantined) and is no result.
func (s *Server) storedResult(r *chunkRequest, encoder string, settings map[string]string, inputSum func() string) (storage.Metadata, bool) {
	m, ok := s.candidate(r, encoder, settings)
	if !ok || inputSum() != m.InputChecksumSHA256 {
		return storage.Metadata{}, false
	}
	f, cur, err := s.store.OpenShard(r.videoID, r.index)
	if err != nil {
		s.corruptOpen(err)
		return storage.Metadata{}, false
	}
	defer f.Close()
	if cur.ChecksumSHA256 != m.ChecksumSHA256 || cur.Timestamp != m.Timestamp {
		return storage.Metadata{}, false // replaced just now: encode rather than guess
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err == nil && (n != cur.EncodedSize || hex.EncodeToString(h.Sum(nil)) != cur.ChecksumSHA256) {
		err = fmt.Errorf("%d bytes with sha256 %x, its metadata says %d bytes with %s",
			n, h.Sum(nil), cur.EncodedSize, cur.ChecksumSHA256)
	}
	if err != nil {
		s.corrupt(cur, fmt.Errorf("%w: %s: %v", errCorrupted, cur.ShardLocation, err))
		return storage.Metadata{}, false
	}
	s.log.Info("chunk already stored; not encoded again", "video_id", r.videoID, "chunk", r.index,
		"input_sha256", cur.InputChecksumSHA256)
	return cur, true
}

// spooled is an upload copied to a temporary file in the store's TempDir.
type spooled struct{ f *os.File }

// spool copies in to a new file in the store's TempDir and rewinds it.
func (s *Server) spool(ctx context.Context, in io.Reader) (*spooled, error) {
	f, err := os.CreateTemp(s.store.TempDir(), "upload-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp := &spooled{f: f}
	if _, err := io.Copy(f, ctxReader{ctx, in}); err != nil {
		sp.remove(s)
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		sp.remove(s)
		return nil, fmt.Errorf("spool: %w", err)
	}
	return sp, nil
}

func (sp *spooled) remove(s *Server) {
	sp.f.Close()
	if err := os.Remove(sp.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot remove spooled upload", "path", sp.f.Name(), "err", err)
	}
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// acquire takes an encode slot, waiting in a bounded queue.
func (s *Server) acquire(ctx context.Context) (release func(), err error) {
	release = func() {
		<-s.slots
		s.active.Add(-1)
	}
	select {
	case s.slots <- struct{}{}:
		s.active.Add(1)
		return release, nil
	default:
	}
	if n := s.queued.Add(1); int(n) > s.cfg.MaxQueuedTasks {
		s.queued.Add(-1)
		return nil, fmt.Errorf("%w: %d encodes running and %d queued; retry later", errBusy, cap(s.slots), n-1)
	}
	defer s.queued.Add(-1)
	select {
	case s.slots <- struct{}{}:
		s.active.Add(1)
		return release, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for an encode slot: %w", ctx.Err())
	}
}

// processResponse describes a committed chunk; one that was already in the
// store (a retry) is told apart by the message only.
func (s *Server) processResponse(p processed) *pb.ProcessChunkResponse {
	m := p.meta
	msg := fmt.Sprintf("chunk %d of %s stored", m.ChunkIndex, m.VideoID)
	if p.stored {
		msg = fmt.Sprintf("chunk %d of %s already stored", m.ChunkIndex, m.VideoID)
	}
	return &pb.ProcessChunkResponse{
		Success:        true,
		WorkerId:       s.cfg.WorkerID,
		ShardLocation:  m.ShardLocation,
		OriginalSize:   m.OriginalSize,
		EncodedSize:    m.EncodedSize,
		Message:        msg,
		ChecksumSha256: m.ChecksumSHA256,
		Metadata:       toProtoMetadata(m),
		PictureHashes:  p.pictureHashes,
	}
}

// encodeOptions translates a request's encoding options and trim (either
// may be nil) and its ask for picture hashes; the encoder validates them.
func encodeOptions(o *pb.EncodingOptions, trim *pb.FrameTrim, hashPictures bool) encode.Options {
	var opts encode.Options
	if o != nil {
		opts = encode.Options{VideoCodec: o.GetVideoCodec(), Preset: o.GetPreset()}
		if o.Crf != nil {
			crf := int(o.GetCrf())
			opts.CRF = &crf
		}
	}
	if trim != nil {
		opts.Trim = &encode.Trim{Start: trim.GetStartFrame(), Frames: trim.GetFrameCount()}
	}
	opts.HashPictures = hashPictures
	return opts
}

// hashesPictures reports whether the encoder honours
// encode.Options.HashPictures.
func (s *Server) hashesPictures() bool {
	h, ok := s.enc.(encode.PictureHasher)
	return ok && h.HashesPictures()
}

// trimsFrames reports whether the encoder honours encode.Options.Trim.
func (s *Server) trimsFrames() bool {
	t, ok := s.enc.(encode.FrameTrimmer)
	return ok && t.TrimsFrames()
}

// inputPrefixBytes is how much of an input its prefix checksum covers.
const inputPrefixBytes = 1 << 20

// prefixMatches reports whether prefix (an input's first inputPrefixBytes,
// or all of it) may begin the stored chunk m's input: its SHA-256 is m's,
// or m records none.
func prefixMatches(m storage.Metadata, prefix []byte) bool {
	if m.InputPrefixSHA256 == "" {
		return true
	}
	sum := sha256.Sum256(prefix)
	return hex.EncodeToString(sum[:]) == m.InputPrefixSHA256
}

// inputHasher computes a chunk's SHA-256 (and that of its first
// inputPrefixBytes) on its own goroutine while the encoder reads the same
// bytes, so hashing does not add to the encode time.
type inputHasher struct {
	pieces chan []byte
	done   chan struct{}
	once   sync.Once
	n      int64
	sum    string
	prefix string
}

func newInputHasher() *inputHasher {
	h := &inputHasher{pieces: make(chan []byte, 64), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		d, p := sha256.New(), sha256.New()
		for b := range h.pieces {
			if h.n < inputPrefixBytes {
				p.Write(b[:min(int64(len(b)), inputPrefixBytes-h.n)])
			}
			d.Write(b)
			h.n += int64(len(b))
		}
		h.sum = hex.EncodeToString(d.Sum(nil))
		h.prefix = hex.EncodeToString(p.Sum(nil))
	}()
	return h
}

// prefixSum waits like finish and returns the hex SHA-256 of the first
// inputPrefixBytes.
func (h *inputHasher) prefixSum() string {
	h.finish()
	return h.prefix
}

// add queues b for hashing; b must not change afterwards.
func (h *inputHasher) add(b []byte) { h.pieces <- b }

// finish waits for every added byte to be hashed and returns the count and
// hex digest. It may be called more than once.
func (h *inputHasher) finish() (int64, string) {
	h.once.Do(func() { close(h.pieces) })
	<-h.done
	return h.n, h.sum
}

// uploadReader presents UploadChunk's data frames as one stream of exactly
// total bytes, and fails if the client sends more, fewer, or a second header.
type uploadReader struct {
	stream           pb.VideoProcessingService_UploadChunkServer
	total, remaining int64
	buf              []byte
	ended            bool
	hasher           *inputHasher // fed each frame as it arrives
}

func (r *uploadReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.ended {
			return 0, io.EOF
		}
		msg, err := r.stream.Recv()
		if errors.Is(err, io.EOF) {
			if r.remaining > 0 {
				return 0, invalidf("upload stream ended after %d of %d bytes", r.total-r.remaining, r.total)
			}
			r.ended = true
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
		if msg.GetHeader() != nil {
			return 0, invalidf("upload stream carries a second header")
		}
		data := msg.GetData()
		if int64(len(data)) > r.remaining {
			return 0, invalidf("upload stream carries more than the %d bytes its header announced", r.total)
		}
		r.remaining -= int64(len(data))
		r.buf = data
		r.hasher.add(data) // gRPC gives each message its own memory
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
