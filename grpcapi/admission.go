package grpcapi

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/tap"

	pb "github.com/videoshard/videoshard/proto"
)

// Admission. gRPC reads a unary call's whole message before any handler or
// interceptor runs, so a worker that refused chunks only in its handler had
// already paid for them in memory. The calls that carry chunks are
// therefore counted from the moment their headers arrive (grpc.InTapHandle,
// which runs before gRPC reads a byte of the body) until their handler
// ends, and refused at once beyond their limit: MaxUnaryChunks for unary
// ProcessChunk, MaxUploads for UploadChunk.
//
// A count cannot leak: a call that is admitted either reaches its handler,
// which takes the admission over and gives it back when it returns (before
// the answer is written, so a client's next call finds the place free), or
// its stream ends first (client gone, message too large, refused by
// authentication, message deadline), and the end of its stream gives it
// back.

// gate bounds the calls of one kind in flight.
type gate struct {
	what string // what is counted, for the refusal
	key  string // the config key that sets max
	max  int64
	n    atomic.Int64

	// suspectFor is how long a client one of whose calls lost its place
	// for its pace stays suspect (see suspect): UploadIdleTimeout.
	suspectFor time.Duration

	mu        sync.Mutex
	receiving map[*admission]paced // calls still receiving their data (track)
	suspects  map[string]time.Time // client hosts suspect until then (suspect)
}

// maxSuspects bounds a gate's suspects: beyond it the oldest mark goes.
const maxSuspects = 4096

// paced is a call receiving its data at a pace it must keep: an upload's
// receiver, or a unary call's unaryPace.
type paced interface {
	// behind reports whether the call is under half the pace, and its
	// pace as a share of that pace.
	behind(now time.Time) (pace float64, behind bool)
	// evict ends the call, admitted as a, its place taken by another;
	// false if it was too late (the call has its data and goes on).
	evict(a *admission) bool
	// client is the calling host, for suspect.
	client() string
}

// suspect marks host as a client one of whose calls lost its place for
// its pace, for suspectFor. While it is suspect, its calls still waiting
// for their data are the first whose place a newcomer takes, without the
// grace of behindAfter: a client that opens a new call the moment its old
// one is judged would otherwise keep the place for ever, its own new call
// taking its old one's, every behindAfter.
func (g *gate) suspect(host string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.suspectLocked(host, now)
}

func (g *gate) suspectLocked(host string, now time.Time) {
	if g.suspectFor <= 0 || host == "" {
		return
	}
	if g.suspects == nil {
		g.suspects = make(map[string]time.Time)
	}
	if _, ok := g.suspects[host]; !ok && len(g.suspects) >= maxSuspects {
		oldest := ""
		for h, until := range g.suspects {
			if oldest == "" || until.Before(g.suspects[oldest]) {
				oldest = h
			}
		}
		delete(g.suspects, oldest)
	}
	g.suspects[host] = now.Add(g.suspectFor)
}

// suspectedLocked reports whether host is suspect at now.
func (g *gate) suspectedLocked(host string, now time.Time) bool {
	until, ok := g.suspects[host]
	if ok && !now.Before(until) {
		delete(g.suspects, host)
		return false
	}
	return ok
}

// clientHost is the host of a client address (host:port).
func clientHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// track counts a's call, receiving at rx's pace, among those whose place
// a waiting call may take should it fall behind (takeFromSlow).
func (a *admission) track(rx paced) {
	g := a.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.receiving == nil {
		g.receiving = make(map[*admission]paced)
	}
	g.receiving[a] = rx
}

// untrack ends a's tracking (its data is in, or it is over).
func (a *admission) untrack() {
	a.gate.mu.Lock()
	delete(a.gate.receiving, a)
	a.gate.mu.Unlock()
}

// takeFromSlow gives a call refused by a full gate the place of the call
// furthest behind the pace it must keep, if one is behind (see
// receiver.behind, unaryPace.behind), a suspect client's first: that call
// is ended, its client made suspect, and its place passes to the caller
// without being given back, so the trickling clients that took every place
// as it freed cannot take it first. It reports whether it did.
func (g *gate) takeFromSlow(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		var victim *admission
		var worst float64
		for a, rx := range g.receiving {
			pace, behind := rx.behind(now)
			if g.suspectedLocked(rx.client(), now) {
				pace, behind = -1, true
			}
			if behind && (victim == nil || pace < worst) {
				victim, worst = a, pace
			}
		}
		if victim == nil {
			return false
		}
		rx := g.receiving[victim]
		delete(g.receiving, victim)
		if rx.evict(victim) {
			g.suspectLocked(rx.client(), now)
			return true
		}
	}
}

// enter counts one more call, or says why not.
func (g *gate) enter() error {
	if n := g.n.Add(1); n > g.max {
		g.n.Add(-1)
		return fmt.Errorf("%w: %d %s in flight, the limit (%s) is %d; retry later", errBusy, n-1, g.what, g.key, g.max)
	}
	return nil
}

func (g *gate) leave() { g.n.Add(-1) }

// An admission is one counted call. Its state goes from admitted to
// running (its handler started) to released, or from admitted straight to
// released (its stream ended first); whichever step reaches released gives
// the count back, exactly once.
type admission struct {
	gate  *gate
	state atomic.Int32
	// timer, for unary calls, drops the admission and cancels the call when
	// its message has not arrived by Config.UploadTimeout.
	timer *time.Timer
	// waiting, for unary calls on a connection Listener accepted, counts
	// the calls there still waiting for their message; this one leaves it
	// when it starts or is dropped.
	waiting *atomic.Int64
	// handedOn: takeFromSlow gave this call's place to another, which
	// gives it back in its turn.
	handedOn atomic.Bool
}

// leftAdmitted is called once, by whichever of start and drop moved the
// admission on from admitted.
func (a *admission) leftAdmitted() {
	if a.waiting != nil {
		a.waiting.Add(-1)
	}
}

const (
	admitted int32 = iota
	running
	released
)

// start hands the admission to the handler. It is false when the call has
// already ended (stream gone, message too late, its place taken): the
// handler must return at once.
func (a *admission) start() bool {
	if !a.state.CompareAndSwap(admitted, running) {
		return false
	}
	a.untrack() // a unary call's message is in
	a.leftAdmitted()
	if a.timer != nil {
		a.timer.Stop()
	}
	return true
}

// finish gives back a started admission, unless its place was handed on.
func (a *admission) finish() {
	a.untrack() // first: takeFromSlow hands on only the places of those it tracks
	if a.state.CompareAndSwap(running, released) && !a.handedOn.Load() {
		a.gate.leave()
	}
}

// drop gives back an admission whose handler has not started, reporting
// whether it did.
func (a *admission) drop() bool {
	if a.state.CompareAndSwap(admitted, released) {
		a.untrack()
		a.leftAdmitted()
		a.gate.leave()
		return true
	}
	return false
}

type admissionKey struct{}

// admissionFrom returns the call's admission; nil when the server runs
// without the tap (a grpc.Server built without GRPCOptions).
func admissionFrom(ctx context.Context) *admission {
	a, _ := ctx.Value(admissionKey{}).(*admission)
	return a
}

// startAdmission takes over ctx's admission for a handler. The returned
// finish must be called when the handler is done; err is set when the call
// has ended already.
func startAdmission(ctx context.Context) (finish func(), err error) {
	a := admissionFrom(ctx)
	if a == nil {
		return func() {}, nil
	}
	if !a.start() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, context.Canceled
	}
	return a.finish, nil
}

// tapHandle is the server's grpc.InTapHandle: it runs when a call's
// headers arrive, before gRPC reads its message. A caller auth (when
// set) refuses is answered then, Unauthenticated, before it takes a
// chunk slot it could hold for an upload's length; then admit.
func (s *Server) tapHandle(auth *TokenAuth) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if auth != nil {
			if err := auth.authorizeHeader(info.Header, info.FullMethodName); err != nil {
				s.warns.warn("call refused before its message was read", "method", info.FullMethodName, "code", codes.Unauthenticated)
				return nil, err
			}
		}
		return s.admit(ctx, info)
	}
}

// admit gives a chunk call a place (see gate) or refuses it, and gives
// other calls a deadline for their message (awaitMessage).
func (s *Server) admit(ctx context.Context, info *tap.Info) (context.Context, error) {
	var g *gate
	switch info.FullMethodName {
	case pb.VideoProcessingService_ProcessChunk_FullMethodName:
		g = s.unaryGate
	case pb.VideoProcessingService_UploadChunk_FullMethodName:
		g = s.uploadGate
	default:
		return s.awaitMessage(ctx), nil
	}
	if err := g.enter(); err != nil && !g.takeFromSlow(time.Now()) {
		s.warns.warn("call refused before its message was read", "method", info.FullMethodName, "error", err)
		return nil, toStatus(err)
	}
	a := &admission{gate: g}
	if g == s.unaryGate && s.cfg.UploadTimeout > 0 {
		// A unary message that trickles in would hold its place for ever:
		// gRPC has no deadline of its own for reading it. The stream reads
		// its message under this context, so cancelling it ends the read.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		s.watchUnary(a, connOf(ctx), cancel)
	}
	// The stream's context ends with the stream, whatever ends it.
	context.AfterFunc(ctx, func() {
		a.drop()
		if a.timer != nil {
			a.timer.Stop()
		}
	})
	return context.WithValue(ctx, admissionKey{}, a), nil
}

// awaitMessage gives a call that carries no chunk UploadIdleTimeout for
// its request message to arrive (messageArrived stops the clock), then
// ends it: its headers would hold their memory for as long as the client
// keeps the stream open, a hundred calls to a connection.
func (s *Server) awaitMessage(ctx context.Context) context.Context {
	idle := s.cfg.UploadIdleTimeout
	if idle <= 0 {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	t := time.AfterFunc(idle, func() {
		s.warns.warn("call ended: its message did not come", "within", idle, "key", "limits.upload_idle_timeout")
		cancel()
	})
	context.AfterFunc(ctx, func() { t.Stop() })
	return context.WithValue(ctx, messageClockKey{}, t)
}

type messageClockKey struct{}

// messageArrived stops ctx's awaitMessage clock: the request has come.
func messageArrived(ctx context.Context) {
	if t, ok := ctx.Value(messageClockKey{}).(*time.Timer); ok {
		t.Stop()
	}
}

// messageInterceptors stop the awaitMessage clock: a unary call's message
// has come when its handler runs, a stream's with its first message.
func messageInterceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		messageArrived(ctx)
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &firstMessageStream{ServerStream: ss})
	}
	return unary, stream
}

// firstMessageStream stops its call's awaitMessage clock at its first
// message.
type firstMessageStream struct {
	grpc.ServerStream
	got bool
}

func (f *firstMessageStream) RecvMsg(m any) error {
	err := f.ServerStream.RecvMsg(m)
	if err == nil && !f.got {
		f.got = true
		messageArrived(f.Context())
	}
	return err
}

// watchUnary drops a, a unary call's admission, and cancels its read when
// its message has not arrived by UploadTimeout, or, when its connection p
// is known, as soon as the connection brings less than uploadProgressBytes
// for each of its calls still waiting for their message in an
// UploadIdleTimeout: a client trickling its messages holds its places for
// that long, not for UploadTimeout, and several calls on one connection
// are each held to that pace.
func (s *Server) watchUnary(a *admission, p *connProgress, cancel context.CancelFunc) {
	deadline := time.Now().Add(s.cfg.UploadTimeout)
	step := s.cfg.UploadTimeout
	var last int64
	if p != nil && s.cfg.UploadIdleTimeout > 0 {
		step = min(step, s.cfg.UploadIdleTimeout)
		a.waiting = &p.unaryWaiting
		a.waiting.Add(1)
		last = p.read.Load()
	} else {
		p = nil
	}
	var mu sync.Mutex // the timer is re-armed by its own function
	var pace *unaryPace
	if p != nil {
		pace = &unaryPace{conn: p, start: time.Now(), startBytes: last, idle: s.cfg.UploadIdleTimeout, cancel: cancel, warns: s.warns,
			host: clientHost(p.addr)}
	}
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if a.state.Load() != admitted {
			return // started or gone: nothing to watch
		}
		left := time.Until(deadline)
		var slow bool
		if p != nil {
			n := p.read.Load()
			slow, last = n-last < uploadProgressBytes*max(1, p.unaryWaiting.Load()), n
		}
		switch {
		case left <= 0:
			if a.drop() {
				s.warns.warn("unary ProcessChunk cancelled: its message did not arrive in time",
					"limit", s.cfg.UploadTimeout, "key", "limits.upload_timeout")
				cancel()
			}
		case slow:
			if a.drop() {
				a.gate.suspect(pace.host, time.Now()) // slow is only judged with p, so with pace
				s.warns.warn("unary ProcessChunk cancelled: its connection brought too little of its message",
					"want_bytes", uploadProgressBytes, "within", s.cfg.UploadIdleTimeout, "key", "limits.upload_idle_timeout")
				cancel()
			}
		default:
			a.timer.Reset(min(step, left))
		}
	}
	mu.Lock()
	a.timer = time.AfterFunc(step, check)
	mu.Unlock()
	if pace != nil {
		a.track(pace) // after the timer is set: evict stops it
	}
}

// unaryPace is the pace of a unary call waiting for its message, measured
// on its connection since it was admitted: uploadProgressBytes of message
// an UploadIdleTimeout for each of the connection's calls waiting.
type unaryPace struct {
	conn       *connProgress
	start      time.Time
	startBytes int64
	idle       time.Duration
	cancel     context.CancelFunc // ends the call's read
	warns      *warnLimiter
	host       string
}

func (u *unaryPace) client() string { return u.host }

func (u *unaryPace) behind(now time.Time) (pace float64, behind bool) {
	elapsed := now.Sub(u.start)
	if elapsed < behindAfter {
		return 0, false
	}
	want := uploadProgressBytes * float64(max(1, u.conn.unaryWaiting.Load()))
	pace = float64(u.conn.read.Load()-u.startBytes) / want * float64(u.idle) / float64(elapsed)
	return pace, pace < 0.5
}

func (u *unaryPace) evict(a *admission) bool {
	if !a.state.CompareAndSwap(admitted, released) {
		return false
	}
	a.leftAdmitted()
	a.timer.Stop()
	u.warns.warn("unary ProcessChunk cancelled: its connection brought its message at under half the pace while another call waited for its place",
		"want_bytes", uploadProgressBytes, "within", u.idle, "key", "limits.upload_idle_timeout", "client", u.conn.addr)
	u.cancel()
	return true
}

// messageMemoryFactor is how many times MaxMessageBytes one admitted call
// may hold at worst: gRPC's received frames, their contiguous copy and the
// decoded message coexist while it is decoded, and the collector reclaims
// the garbage of earlier messages only some time later. Measured at 3.2 to
// 3.7 under the worst admitted load (BenchmarkWorkerRSSWorstAdmitted).
const messageMemoryFactor = 4

// MessageMemory is the most memory the calls s admits can hold at once
// with messages of the maximum size: messageMemoryFactor x
// (MaxUnaryChunks + MaxUploads) x MaxMessageBytes, plus the shard bytes
// answers may hold (MaxReadBytes). Other calls carry small
// messages; a client that sends large ones to them is bounded only by
// MaxConcurrentStreams per connection.
func (s *Server) MessageMemory() int64 {
	return messageMemoryFactor*int64(s.cfg.MaxUnaryChunks+s.cfg.MaxUploads)*int64(s.cfg.MaxMessageBytes) + s.cfg.MaxReadBytes
}

// maxHeaderListBytes bounds a call's headers: ours (a token, a request id)
// take a few hundred bytes.
const maxHeaderListBytes = 16 << 10

// GRPCOptions returns the options of a gRPC server that serves s: the
// interceptors of ServerOptions (with opts), its transport credentials
// (WithCredentials, or plaintext), the admission tap, the message
// size limit (Config.MaxMessageBytes, both ways) and the per-connection
// stream limit (Config.MaxConcurrentStreams). They come from s's own
// Config, so the limits gRPC enforces are the ones s reports and checks.
// Stop waits for the handlers it cancels to return, so that nothing writes
// to the store once the server has stopped (the worker closes it next).
func (s *Server) GRPCOptions(opts ...Option) []grpc.ServerOption {
	var given options
	for _, opt := range opts {
		opt(&given)
	}
	creds := given.creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	o := append(ServerOptions(s.log, append([]Option{withCodec(s.codec), WithInterceptors(messageInterceptors())}, opts...)...),
		grpc.Creds(countingCreds{creds}), // for watchUnary's message bytes
		grpc.InTapHandle(s.tapHandle(given.auth)),
		grpc.StatsHandler(connTagger{&s.connBytes}), // for Listener's counts
		grpc.MaxRecvMsgSize(s.cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(s.cfg.MaxMessageBytes),
		// gRPC's default (16 MiB) lets a call that never sends its
		// message hold that much in headers, a hundred per connection.
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		grpc.WaitForHandlers(true),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: IdleConnTimeout}),
	)
	if s.cfg.MaxConcurrentStreams > 0 {
		o = append(o, grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams))
	}
	return o
}
