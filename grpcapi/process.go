package grpcapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"time"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// ProcessChunk encodes a chunk sent whole in one message. A retry (the same
// video, chunk, input bytes and effective settings as the committed chunk)
// is answered from the store without encoding; see process. The call was
// admitted before gRPC read its message (admission.go).
func (s *Server) ProcessChunk(ctx context.Context, req *pb.ProcessChunkRequest) (*pb.ProcessChunkResponse, error) {
	finish, err := startAdmission(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	defer finish()
	if err := validateChunkID(req.GetVideoId(), int64(req.GetChunkIndex())); err != nil {
		return nil, toStatus(err)
	}
	data := req.GetChunkData()
	if err := s.checkSize(int64(len(data))); err != nil {
		return nil, toStatus(err)
	}
	res, err := s.process(ctx, &chunkRequest{
		videoID: req.GetVideoId(),
		index:   int(req.GetChunkIndex()),
		size:    int64(len(data)),
		in:      bytes.NewReader(data),
		data:    data,
		sums:    hashInBackground(data),
		opts:    encodeOptions(req.GetEncoding(), req.GetTrim(), req.GetWantPictureHashes()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return s.processResponse(res), nil
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

// chunkRequest is a validated ProcessChunk or a received UploadChunk.
type chunkRequest struct {
	videoID string
	index   int
	size    int64     // exact input size
	in      io.Reader // the whole input: the message's bytes, or the spooled upload
	data    []byte    // the whole input, when it came in one message
	spooled bool      // the input is an upload received whole into a spool file
	// sums returns the input's size and checksums, waiting until every
	// byte has been hashed.
	sums func() inputSums
	opts encode.Options
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
// with stored set, and nothing is encoded or written. Whether it does is
// asked twice: before the encode, when the encoder can tell its settings
// in advance (storedBeforeEncode), and after it, against whatever was
// committed meanwhile (storedAfterEncode). Different bytes or settings
// replace the chunk through Commit: the old version stays readable until
// the new one is committed.
func (s *Server) process(ctx context.Context, r *chunkRequest) (processed, error) {
	defer r.sums() // no hashing goroutine outlives the call
	if err := s.checkOptions(r.opts); err != nil {
		return processed{}, err
	}
	if m, ok := s.storedBeforeEncode(r); ok {
		return processed{meta: m, stored: true}, nil
	}
	// An upload has been received whole: it waits for a slot whatever the
	// queue holds (uploads in flight are bounded by MaxUploads) rather than
	// be refused after its client has sent it all.
	release, err := s.acquire(ctx, !r.spooled)
	if err != nil {
		return processed{}, err
	}
	defer release()
	return s.encodeAndCommit(ctx, r)
}

// storedBeforeEncode returns the committed chunk if it is r's result,
// found before an encode slot is taken. It needs the encoder's settings in
// advance (encode.SettingsResolver); and the whole input's hash, which a
// unary chunk computes while this runs (about 45 ms for 64 MiB), is waited
// for only when a stored chunk of that size and settings exists and the
// first MiB's hash matches the one it records.
func (s *Server) storedBeforeEncode(r *chunkRequest) (storage.Metadata, bool) {
	settings, known := s.settingsFor(r.opts)
	if !known {
		return storage.Metadata{}, false
	}
	m, ok := s.candidate(r, s.enc.Name(), settings)
	if !ok || !r.prefixMayMatch(m) {
		return storage.Metadata{}, false
	}
	return s.storedResult(r, m)
}

// storedAfterEncode returns the committed chunk if it is r's result, as
// encoded in res: a duplicate request may have committed it while this one
// encoded, or the encoder could not tell its settings in advance.
func (s *Server) storedAfterEncode(r *chunkRequest, res encode.Result) (storage.Metadata, bool) {
	m, ok := s.candidate(r, res.Encoder, res.Settings)
	if !ok {
		return storage.Metadata{}, false
	}
	return s.storedResult(r, m)
}

// encodeAndCommit encodes r into a new pending shard and commits it; if
// the store holds r's result by then, it returns that and discards the
// new output.
func (s *Server) encodeAndCommit(ctx context.Context, r *chunkRequest) (processed, error) {
	pending, err := s.store.Create(r.videoID, r.index)
	if err != nil {
		return processed{}, err
	}
	defer pending.Abort()
	res, err := s.encode(ctx, r, pending)
	if err != nil {
		return processed{}, fmt.Errorf("encode %s chunk %d: %w", r.videoID, r.index, err)
	}
	if m, ok := s.storedAfterEncode(r, res); ok {
		return processed{meta: m, stored: true}, nil // the deferred Abort discards the new output
	}
	meta, err := pending.Commit(s.shardMetadata(r.sums(), res))
	if err != nil {
		return processed{}, fmt.Errorf("store %s chunk %d: %w", r.videoID, r.index, err)
	}
	s.log.Info("chunk stored", "video_id", r.videoID, "chunk", r.index,
		"original_size", meta.OriginalSize, "encoded_size", meta.EncodedSize,
		"encoder", meta.Encoder, "codec", meta.VideoCodec, "encode_time", res.EncodeTime.Round(time.Millisecond))
	return processed{meta: meta, pictureHashes: res.PictureHashes}, nil
}

// encode runs the encoder over r's whole input into out. Its EncodeTime
// is the encoder's own, or the call's when it gives none.
func (s *Server) encode(ctx context.Context, r *chunkRequest, out encode.Output) (encode.Result, error) {
	start := time.Now()
	res, err := s.enc.Encode(ctx, r.in, out, r.opts)
	if err != nil {
		return encode.Result{}, err
	}
	// An encoder must read its whole input: what it left was never encoded.
	if n, err := r.in.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("encoder %s left input unread", res.Encoder)
		}
		return encode.Result{}, err
	}
	if res.EncodeTime == 0 {
		res.EncodeTime = time.Since(start)
	}
	return res, nil
}

// shardMetadata is what Commit records of an encode of an input with sums,
// beside what the store fills in.
func (s *Server) shardMetadata(sums inputSums, res encode.Result) storage.Metadata {
	return storage.Metadata{
		OriginalSize:        sums.size,
		WorkerID:            s.cfg.WorkerID,
		InputChecksumSHA256: sums.sum,
		InputPrefixSHA256:   sums.prefix,
		Encoder:             res.Encoder,
		VideoCodec:          res.VideoCodec,
		AudioCodec:          res.AudioCodec,
		Container:           res.Container,
		EncoderSettings:     res.Settings,
		DurationSeconds:     res.DurationSeconds,
		FrameCount:          res.FrameCount,
		Width:               res.Width,
		Height:              res.Height,
		EncodeTimeSeconds:   res.EncodeTime.Seconds(),
		Quality:             storedQuality(res),
	}
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

// checkOptions refuses options the encoder would refuse, before anything
// is read or encoded: a trim it cannot do, or overrides outside its
// allowlist (when it can tell in advance, see encode.SettingsResolver).
func (s *Server) checkOptions(opts encode.Options) error {
	if opts.Trim != nil && !s.trimsFrames() {
		return invalidf("this worker's encoder (%s) cannot trim frames", s.enc.Name())
	}
	if r, ok := s.enc.(encode.SettingsResolver); ok {
		if _, err := r.Settings(opts); errors.Is(err, encode.ErrInvalidOptions) {
			return err
		}
	}
	return nil
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
// encoded here (a replicated copy's input checksum is its source's word,
// which a hostile peer could make any chunk's: that copy is encoded over),
// same input size, encoder and settings, and an input checksum to compare
// with.
func (s *Server) candidate(r *chunkRequest, encoder string, settings map[string]string) (storage.Metadata, bool) {
	m, err := s.store.Lookup(r.videoID, r.index)
	if err != nil || m.ReplicatedFrom != "" || m.InputChecksumSHA256 == "" || m.OriginalSize != r.size ||
		m.Encoder != encoder || !maps.Equal(m.EncoderSettings, settings) {
		return storage.Metadata{}, false
	}
	return m, true
}

// storedResult returns the candidate m if it is r's result: r's input
// hashes to m's input checksum (waited for only now), and m's shard still
// verifies. The store reads the shard through its verified reader: a
// corrupt one is quarantined and counted there, and is no result, so the
// chunk is encoded anew.
func (s *Server) storedResult(r *chunkRequest, m storage.Metadata) (storage.Metadata, bool) {
	if r.sums().sum != m.InputChecksumSHA256 {
		return storage.Metadata{}, false
	}
	cur, err := s.store.Verify(r.videoID, r.index)
	if err != nil || cur.ChecksumSHA256 != m.ChecksumSHA256 || cur.Timestamp != m.Timestamp {
		return storage.Metadata{}, false // corrupt, or replaced just now: encode rather than guess
	}
	s.log.Info("chunk already stored; not encoded again", "video_id", r.videoID, "chunk", r.index,
		"input_sha256", cur.InputChecksumSHA256)
	return cur, true
}

// acquire takes an encode slot, waiting in the queue. A bounded wait is
// refused when MaxQueuedTasks others wait already.
func (s *Server) acquire(ctx context.Context, bounded bool) (release func(), err error) {
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
	if n := s.queued.Add(1); bounded && int(n) > s.cfg.MaxQueuedTasks {
		s.queued.Add(-1)
		return nil, s.busy(int(n - 1))
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

// saturated reports whether every encode slot is taken and every queue
// place too: a new chunk would be refused.
func (s *Server) saturated() bool {
	return len(s.slots) == cap(s.slots) && int(s.queued.Load()) >= s.cfg.MaxQueuedTasks
}

// busy is the refusal of a chunk that finds every slot and queue place
// taken (queued of them waiting).
func (s *Server) busy(queued int) error {
	return fmt.Errorf("%w: %d encodes running and %d queued (limits.max_concurrent_tasks, limits.max_queued_tasks); retry later",
		errBusy, cap(s.slots), queued)
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

// prefixMayMatch is the cheap first test of whether r's input is the
// stored chunk m's, before its whole hash is waited for: a unary chunk's
// first MiB must hash to m's prefix checksum. An upload passes: it was
// hashed whole while it was spooled, so there is nothing to save.
func (r *chunkRequest) prefixMayMatch(m storage.Metadata) bool {
	return r.data == nil || prefixMatches(m, r.data[:min(len(r.data), inputPrefixBytes)])
}

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

// inputSums are an input's size, its SHA-256 and that of its first
// inputPrefixBytes, in hex.
type inputSums struct {
	size        int64
	sum, prefix string
}

// inputHasher hashes an input as it is written. The prefix's hash is the
// running hash's sum when the first inputPrefixBytes are in (Sum leaves the
// state alone): one pass over the bytes, not a second over the first MiB.
type inputHasher struct {
	all    hash.Hash
	prefix string // hex SHA-256 of the first inputPrefixBytes, once they are in
	n      int64
}

func newInputHasher() *inputHasher {
	return &inputHasher{all: sha256.New()}
}

func (h *inputHasher) write(b []byte) {
	if h.n < inputPrefixBytes && h.n+int64(len(b)) >= inputPrefixBytes {
		k := inputPrefixBytes - h.n
		h.all.Write(b[:k])
		h.prefix = hex.EncodeToString(h.all.Sum(nil))
		b = b[k:]
		h.n += k
	}
	h.all.Write(b)
	h.n += int64(len(b))
}

func (h *inputHasher) sums() inputSums {
	sum := hex.EncodeToString(h.all.Sum(nil))
	prefix := h.prefix
	if h.n < inputPrefixBytes { // the whole input is its prefix
		prefix = sum
	}
	return inputSums{size: h.n, sum: sum, prefix: prefix}
}

// hashInBackground hashes data on its own goroutine, so that it does not
// add to the encode that reads the same bytes meanwhile; the returned
// function waits for the result.
func hashInBackground(data []byte) func() inputSums {
	done := make(chan struct{})
	var sums inputSums
	go func() {
		defer close(done)
		h := newInputHasher()
		h.write(data)
		sums = h.sums()
	}()
	return func() inputSums {
		<-done
		return sums
	}
}
