package grpcapi

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// Connection progress. gRPC reads a unary call's message whole before
// anything of ours runs and says nothing of how it comes, so a client that
// trickles a message a byte at a time would hold its unary place until
// UploadTimeout. Listener counts the bytes each connection brings; the
// connection's count reaches the call's admission through the context
// gRPC derives every stream from (connTagger), and the admission is
// dropped when the connection brings less than uploadProgressBytes in an
// UploadIdleTimeout, as an upload is.

// connBytes holds the byte count of each connection Listener accepted.
type connBytes struct {
	mu    sync.Mutex
	conns map[string]*atomic.Int64 // by remote address; nil: ambiguous
}

// add registers a connection from addr and returns its count; nil when
// another connection from the same address is open (then neither has one).
func (c *connBytes) add(addr string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		c.conns = make(map[string]*atomic.Int64)
	}
	if _, dup := c.conns[addr]; dup || addr == "" {
		c.conns[addr] = nil
		return nil
	}
	n := new(atomic.Int64)
	c.conns[addr] = n
	return n
}

// remove forgets the connection from addr whose count is n.
func (c *connBytes) remove(addr string, n *atomic.Int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[addr] == n {
		delete(c.conns, addr)
	}
}

// lookup returns the count of the connection from addr, nil if unknown.
func (c *connBytes) lookup(addr string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns[addr]
}

// Listener returns l counting what each accepted connection brings, for
// the admission of unary calls (see GRPCOptions): serve s through it.
func (s *Server) Listener(l net.Listener) net.Listener {
	return &bytesListener{Listener: l, conns: &s.connBytes}
}

type bytesListener struct {
	net.Listener
	conns *connBytes
}

func (l *bytesListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	addr := c.RemoteAddr().String()
	n := l.conns.add(addr)
	if n == nil {
		return c, nil
	}
	return &bytesConn{Conn: c, n: n, addr: addr, conns: l.conns}, nil
}

type bytesConn struct {
	net.Conn
	n     *atomic.Int64
	addr  string
	conns *connBytes
	once  sync.Once
}

func (c *bytesConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *bytesConn) Close() error {
	c.once.Do(func() { c.conns.remove(c.addr, c.n) })
	return c.Conn.Close()
}

// connTagger is the stats.Handler that puts a connection's count into the
// context of its streams.
type connTagger struct{ conns *connBytes }

type connBytesKey struct{}

func (t connTagger) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	if info.RemoteAddr == nil {
		return ctx
	}
	if n := t.conns.lookup(info.RemoteAddr.String()); n != nil {
		return context.WithValue(ctx, connBytesKey{}, n)
	}
	return ctx
}

func (connTagger) HandleConn(context.Context, stats.ConnStats) {}

func (connTagger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (connTagger) HandleRPC(context.Context, stats.RPCStats) {}

// connReceived is the count of bytes the call's connection has brought;
// nil when it was not accepted by Listener.
func connReceived(ctx context.Context) *atomic.Int64 {
	n, _ := ctx.Value(connBytesKey{}).(*atomic.Int64)
	return n
}
