package grpcapi

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// Connection progress. gRPC reads a unary call's message whole before
// anything of ours runs and says nothing of how it comes. Listener counts
// the message bytes each connection brings (h2Conn, from the handshake on),
// and keeps the connection to close it;
// both reach its calls through the context gRPC derives every stream from
// (connTagger). A unary call's admission is dropped when its connection
// brings less than uploadProgressBytes per waiting call in an
// UploadIdleTimeout, as an upload is (watchUnary); a connection one of
// whose answers is not taken at that pace is closed, so a client that
// never reads cannot keep the read budget from honest ones (watchHold:
// that pace is measured on the answer itself, from the codec).

// connProgress is one connection's counts.
type connProgress struct {
	read         atomic.Int64 // message bytes the connection brought (h2Conn)
	unaryWaiting atomic.Int64 // unary calls waiting for their message (watchUnary)
	conn         net.Conn     // the accepted connection, closed when it stalls
	key          string       // connKey
	addr         string       // the client's end, for messages
}

// connBytes holds the counts of each connection Listener accepted, by
// connKey.
type connBytes struct {
	mu    sync.Mutex
	conns map[string]*connProgress
}

// connKey names a connection by both its ends: a client cannot make two
// connections look alike (one port to two addresses of the worker).
func connKey(local, remote net.Addr) string {
	if local == nil || remote == nil {
		return ""
	}
	return local.String() + " " + remote.String()
}

// add registers conn, named key, and returns its counts. A connection of
// the same name still registered (one the kernel has since replaced, its
// end not yet seen) gives way: its streams already have their counts.
func (c *connBytes) add(key string, conn net.Conn) *connProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		c.conns = make(map[string]*connProgress)
	}
	p := &connProgress{conn: conn, key: key, addr: conn.RemoteAddr().String()}
	c.conns[key] = p
	return p
}

// remove forgets the connection whose counts are p.
func (c *connBytes) remove(p *connProgress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[p.key] == p {
		delete(c.conns, p.key)
	}
}

// lookup returns the counts of the connection named key, nil if unknown.
func (c *connBytes) lookup(key string) *connProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns[key]
}

// Listener returns l counting what each accepted connection brings, for
// the admission of unary calls (see GRPCOptions): serve s through it.
func (s *Server) Listener(l net.Listener) net.Listener {
	return &bytesListener{Listener: l, conns: &s.connBytes, perHost: s.cfg.MaxConnsPerHost, max: s.cfg.MaxConns,
		hosts: map[string]int{}, warns: s.warns}
}

type bytesListener struct {
	net.Listener
	conns   *connBytes
	perHost int
	max     int
	warns   *warnLimiter

	mu    sync.Mutex
	hosts map[string]int // open connections by connHost, guarded by mu
	open  int            // open connections in all, guarded by mu
}

func (l *bytesListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := connHost(c.RemoteAddr())
		l.mu.Lock()
		hostFull := host != "" && l.hosts[host] >= l.perHost
		full := l.open >= l.max
		if !hostFull && !full {
			l.open++
			if host != "" {
				l.hosts[host]++
			}
		}
		l.mu.Unlock()
		switch {
		case hostFull:
			l.warns.warn("connection refused: too many from its host", "host", host, "key", "limits.max_connections_per_host", "limit", l.perHost)
		case full:
			l.warns.warn("connection refused: too many open", "host", host, "key", "limits.max_connections", "limit", l.max)
		}
		if hostFull || full {
			_ = c.Close()
			continue
		}
		setUserTimeout(c) // as gRPC would on c unwrapped
		bc := &bytesConn{Conn: c, l: l, host: host}
		if key := connKey(c.LocalAddr(), c.RemoteAddr()); key != "" {
			bc.p = l.conns.add(key, c)
		}
		return bc, nil
	}
}

// connHost is the host a connection counts against: its IPv4 address, or
// its IPv6 address's /64 (what one client is given); "" when not IP.
func connHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return (&net.IPNet{IP: tcp.IP.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

type bytesConn struct {
	net.Conn
	p    *connProgress // nil when not counted (see connKey)
	l    *bytesListener
	host string
	once sync.Once
}

func (c *bytesConn) Close() error {
	c.once.Do(func() {
		if c.p != nil {
			c.l.conns.remove(c.p)
		}
		c.l.mu.Lock()
		c.l.open--
		if c.host != "" {
			if c.l.hosts[c.host]--; c.l.hosts[c.host] <= 0 {
				delete(c.l.hosts, c.host)
			}
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// connTagger is the stats.Handler that puts a connection's count into the
// context of its streams.
type connTagger struct{ conns *connBytes }

type connBytesKey struct{}

func (t connTagger) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	if p := t.conns.lookup(connKey(info.LocalAddr, info.RemoteAddr)); p != nil {
		return context.WithValue(ctx, connBytesKey{}, p)
	}
	return ctx
}

func (connTagger) HandleConn(context.Context, stats.ConnStats) {}

// TagRPC gives every call its holds (rpcHolds).
func (connTagger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcHoldsKey{}, &rpcHolds{})
}

// HandleRPC gives back the holds of a call reset while its answer went to
// gRPC: an answer gRPC had taken (OutPayload comes once it has) while the
// call was still live is queued on the stream, and freed with it should
// the client reset it later; one it took after the reset may be dropped,
// unfreed (a frame for a stream gRPC has already cleaned up).
func (connTagger) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	if _, ok := rs.(*stats.OutPayload); ok && ctx.Err() != nil {
		if h := holdsOf(ctx); h != nil {
			h.releaseAll()
		}
	}
}

// rpcHolds are a call's read holds not yet given back (watchHold), each by
// the function that gives it back.
type rpcHolds struct {
	mu      sync.Mutex
	next    int
	pending map[int]func()
}

type rpcHoldsKey struct{}

// holdsOf is the call's holds; nil when connTagger did not tag it.
func holdsOf(ctx context.Context) *rpcHolds {
	h, _ := ctx.Value(rpcHoldsKey{}).(*rpcHolds)
	return h
}

// add registers release and returns the function that forgets it.
func (h *rpcHolds) add(release func()) (forget func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending == nil {
		h.pending = make(map[int]func())
	}
	id := h.next
	h.next++
	h.pending[id] = release
	return func() {
		h.mu.Lock()
		delete(h.pending, id)
		h.mu.Unlock()
	}
}

// releaseAll gives back every hold registered.
func (h *rpcHolds) releaseAll() {
	h.mu.Lock()
	pending := h.pending
	h.pending = nil
	h.mu.Unlock()
	for _, release := range pending {
		release()
	}
}

// connOf is the counts of the call's connection; nil when it was not
// accepted by Listener.
func connOf(ctx context.Context) *connProgress {
	p, _ := ctx.Value(connBytesKey{}).(*connProgress)
	return p
}
