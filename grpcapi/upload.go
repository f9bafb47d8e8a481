package grpcapi

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/peer"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// UploadChunk is ProcessChunk for chunks of any size: a header message,
// then data frames, never held whole in memory. The upload is received
// whole, into a spool file in the store's TempDir, before it asks for an
// encode slot: a client that is slow to send holds an upload place
// (MaxUploads) and its spool, never a slot or a queue place, and only
// within UploadIdleTimeout and UploadTimeout (see receiver).
func (s *Server) UploadChunk(stream pb.VideoProcessingService_UploadChunkServer) error {
	resp, err := s.upload(stream)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(resp)
}

// upload receives, spools and processes an UploadChunk. Its admission and
// spool file are given back before it returns, before the client can have
// the answer.
func (s *Server) upload(stream pb.VideoProcessingService_UploadChunkServer) (*pb.ProcessChunkResponse, error) {
	ctx := stream.Context()
	finish, err := startAdmission(ctx)
	if err != nil {
		return nil, err
	}
	defer finish()
	rx := s.newReceiver(stream)
	defer rx.stop()
	a := admissionFrom(ctx)
	if a != nil {
		a.track(rx)
		defer a.untrack()
	}

	first, err := rx.next("the header")
	if errors.Is(err, io.EOF) {
		return nil, invalidf("upload stream is empty: the first message must be a header")
	}
	if err != nil {
		return nil, err
	}
	h := first.GetHeader()
	if h == nil {
		return nil, invalidf("the first upload message must be a header, not data")
	}
	if err := validateChunkID(h.GetVideoId(), int64(h.GetChunkIndex())); err != nil {
		return nil, err
	}
	if err := s.checkSize(h.GetTotalSize()); err != nil {
		return nil, err
	}
	opts := encodeOptions(h.GetEncoding(), h.GetTrim(), h.GetWantPictureHashes())
	if err := s.checkOptions(opts); err != nil {
		return nil, err
	}
	// Refused before its data, as a worker that has no room for a chunk
	// now is unlikely to have it once the chunk is in.
	if s.saturated() {
		return nil, s.busy(int(s.queued.Load()))
	}
	sp, sums, err := s.spoolUpload(rx, h)
	if a != nil {
		a.untrack() // its data is in: what follows is the encode's
		if errors.Is(err, errUploadTimeout) {
			a.gate.suspect(rx.host, time.Now())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s chunk %d: %w", h.GetVideoId(), h.GetChunkIndex(), err)
	}
	defer sp.remove(s)
	res, err := s.process(ctx, &chunkRequest{
		videoID: h.GetVideoId(),
		index:   int(h.GetChunkIndex()),
		size:    h.GetTotalSize(),
		in:      sp.f,
		spooled: true,
		sums:    func() inputSums { return sums },
		opts:    opts,
	})
	if err != nil {
		return nil, err
	}
	return s.processResponse(res), nil
}

// spoolUpload receives the data frames of an upload whose header is h into
// a new file in the store's TempDir, hashing them as they come, then the end
// of its stream. It fails if the client sends more or fewer bytes than h
// announced, or a second header; on error nothing is left behind.
func (s *Server) spoolUpload(rx *receiver, h *pb.UploadHeader) (_ *spooled, _ inputSums, err error) {
	f, err := s.store.CreateTemp("upload-*")
	if err != nil {
		return nil, inputSums{}, fmt.Errorf("spool: %w", err)
	}
	sp := &spooled{f: f}
	defer func() {
		if err != nil {
			sp.remove(s)
		}
	}()
	total := h.GetTotalSize()
	hasher := newInputHasher()
	for hasher.n < total {
		msg, err := rx.next("data")
		if errors.Is(err, io.EOF) {
			return nil, inputSums{}, invalidf("upload stream ended after %d of %d bytes", hasher.n, total)
		}
		if err != nil {
			return nil, inputSums{}, fmt.Errorf("after %d of %d bytes: %w", hasher.n, total, err)
		}
		if msg.GetHeader() != nil {
			return nil, inputSums{}, invalidf("upload stream carries a second header")
		}
		data := msg.GetData()
		if int64(len(data)) > total-hasher.n {
			return nil, inputSums{}, invalidf("upload stream carries more than the %d bytes its header announced", total)
		}
		if _, err := f.Write(data); err != nil {
			return nil, inputSums{}, fmt.Errorf("spool: %w", noSpace(err))
		}
		hasher.write(data)
	}
	// The stream must end, and in time: a client that never closes its
	// side would otherwise hold its upload place for ever.
	for {
		msg, err := rx.next("the end of the stream (CloseSend) after the last data")
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, inputSums{}, err
		}
		switch {
		case msg.GetHeader() != nil:
			return nil, inputSums{}, invalidf("upload stream carries a second header")
		case len(msg.GetData()) > 0:
			return nil, inputSums{}, invalidf("upload stream carries more than the %d bytes its header announced", total)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, inputSums{}, fmt.Errorf("spool: %w", err)
	}
	return sp, hasher.sums(), nil
}

// spooled is an upload copied to a temporary file in the store's TempDir.
type spooled struct{ f *storage.TempFile }

func (sp *spooled) remove(s *Server) {
	if err := sp.f.Remove(); err != nil {
		s.log.Warn("cannot remove spooled upload", "path", sp.f.Name(), "err", err)
	}
}

// receiver reads an upload's messages on a goroutine of its own, one at a
// time and only when asked, so that a client that stalls can be timed out
// and at most one message is held at once. Within idle the stream must
// bring uploadProgressBytes of data (an honest client's frame), or its
// end; tiny or empty messages do not count as progress, so a client that
// trickles a byte every few seconds cannot hold an upload slot for
// limits.upload_timeout. All of it must arrive by deadline.
//
// A timed-out handler returns while the goroutine still waits in Recv: the
// status the handler returns is written first, and ends the stream, which
// ends that Recv. (Ending the Recv sooner, through the stream's context,
// would make gRPC answer Canceled before the handler could say why.)
type receiver struct {
	ask      chan struct{}
	got      chan received
	done     chan struct{} // closed by stop
	exited   chan struct{} // closed when the goroutine has returned
	evicted  chan struct{} // closed by evict
	evictOne sync.Once
	host     string        // the client's (suspect)
	idle     time.Duration // 0: no limit
	limit    time.Duration // the whole upload's; 0: no limit
	deadline time.Time
	err      error // the stream's end (io.EOF) or failure, once seen

	mu          sync.Mutex // guards the fields below, which behind and evict use from other goroutines
	windowStart time.Time  // the idle window's start: the last progress
	windowBytes int        // data bytes received in it
	ended       bool       // next has seen the stream's end: too late to evict
	evictedSet  bool       // evict took the upload's place: next fails
}

// behindAfter is how long an upload's idle window must have run before
// the upload can be judged behind (behind): long enough for an honest
// client's first frame.
const behindAfter = 2 * time.Second

// behind reports whether the upload brings its data at less than half the
// pace it must keep (uploadProgressBytes an idle), judged over the idle
// window so far once it has run behindAfter, and that pace as a share of
// the one it must keep.
func (r *receiver) behind(now time.Time) (pace float64, behind bool) {
	if r.idle <= 0 {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := now.Sub(r.windowStart)
	if elapsed < behindAfter {
		return 0, false
	}
	pace = float64(r.windowBytes) / uploadProgressBytes * float64(r.idle) / float64(elapsed)
	return pace, pace < 0.5
}

func (r *receiver) client() string { return r.host }

// evict ends the upload, admitted as a: a waiting one took its place
// (gate.takeFromSlow), which a's handler must not give back. It is too
// late once next has seen the stream's end: the upload goes on.
func (r *receiver) evict(a *admission) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	r.evictedSet = true
	a.handedOn.Store(true)
	r.evictOne.Do(func() { close(r.evicted) })
	return true
}

// evictedErr is next's error once the upload's place was taken.
func (r *receiver) evictedErr(what string) error {
	r.err = fmt.Errorf("%w: less than half the pace of %d bytes in %v (limits.upload_idle_timeout) while another upload waited for a place, waiting for %s",
		errUploadTimeout, uploadProgressBytes, r.idle, what)
	return r.err
}

// uploadProgressBytes is the data an upload must bring within
// limits.upload_idle_timeout: one frame as the master sends them (1 MiB),
// so 30 s allows any link above 35 kB/s.
const uploadProgressBytes = 1 << 20

type received struct {
	msg *pb.UploadChunkRequest
	err error
}

// newReceiver starts reading stream.
func (s *Server) newReceiver(stream pb.VideoProcessingService_UploadChunkServer) *receiver {
	r := &receiver{
		ask:     make(chan struct{}),
		got:     make(chan received),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
		evicted: make(chan struct{}),
		idle:    s.cfg.UploadIdleTimeout,
		limit:   s.cfg.UploadTimeout,
	}
	if p, ok := peer.FromContext(stream.Context()); ok && p.Addr != nil {
		r.host = clientHost(p.Addr.String())
	}
	r.windowStart = time.Now()
	if r.limit > 0 {
		r.deadline = r.windowStart.Add(r.limit)
	}
	go func() {
		defer close(r.exited)
		for {
			select {
			case <-r.ask:
			case <-r.done:
				return
			}
			msg, err := stream.Recv()
			select {
			case r.got <- received{msg, err}:
			case <-r.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// next returns the stream's next message, io.EOF at its end, or an
// errUploadTimeout saying what did not come (what) and which limit ran out.
func (r *receiver) next(what string) (*pb.UploadChunkRequest, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.ask <- struct{}{}
	r.mu.Lock()
	wait, total := r.idle-time.Since(r.windowStart), false
	r.mu.Unlock()
	if r.limit > 0 {
		if left := time.Until(r.deadline); r.idle <= 0 || left < r.idle {
			wait, total = max(left, 0), true
		}
	}
	var expired <-chan time.Time
	if r.idle > 0 || total {
		t := time.NewTimer(max(wait, 0))
		defer t.Stop()
		expired = t.C
	}
	select {
	case m := <-r.got:
		r.mu.Lock()
		evicted := r.evictedSet
		r.ended = m.err != nil && !evicted
		if r.windowBytes += len(m.msg.GetData()); r.windowBytes >= uploadProgressBytes {
			r.windowStart, r.windowBytes = time.Now(), 0
		}
		r.mu.Unlock()
		if evicted { // its place is another's already: the message comes too late
			return nil, r.evictedErr(what)
		}
		if m.err != nil {
			r.err = m.err
		}
		return m.msg, m.err
	case <-r.evicted:
		return nil, r.evictedErr(what)
	case <-expired:
		if total {
			r.err = fmt.Errorf("%w: not complete within %v (limits.upload_timeout), still waiting for %s",
				errUploadTimeout, r.limit, what)
		} else {
			r.err = fmt.Errorf("%w: less than %d bytes of data in %v (limits.upload_idle_timeout), waiting for %s",
				errUploadTimeout, uploadProgressBytes, r.idle, what)
		}
		return nil, r.err
	}
}

// stop ends the goroutine once its Recv, if any, returns.
func (r *receiver) stop() { close(r.done) }
