package grpcapi

import (
	"encoding/binary"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"
)

// Message bytes. watchUnary holds a unary call to the pace its connection
// brings message bytes at; counted as raw bytes, that pace is kept as well
// by frames that carry none (padding, WINDOW_UPDATE, SETTINGS), which cost
// an attacker nothing. countingCreds gives each connection Listener
// accepted, once its handshake is done (TLS or not), an h2Conn that reads
// the HTTP/2 frame headers going both ways and counts only the data of
// DATA frames on streams the client opened and neither side has ended.

// countingCreds wraps the server's transport credentials (GRPCOptions).
type countingCreds struct {
	credentials.TransportCredentials
}

func (c countingCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	if bc, ok := raw.(*bytesConn); ok && bc.p != nil {
		conn = newH2Conn(conn, bc.p)
	}
	return conn, info, nil
}

func (c countingCreds) Clone() credentials.TransportCredentials {
	return countingCreds{c.TransportCredentials.Clone()}
}

// h2Conn is a server connection that counts, in p.read, the data the
// client sends on its live streams.
type h2Conn struct {
	net.Conn
	p        *connProgress
	from, to frameScanner // the client's frames, and ours

	mu   sync.Mutex
	live map[uint32]bool // streams the client opened that neither side has ended
}

func newH2Conn(c net.Conn, p *connProgress) *h2Conn {
	h := &h2Conn{Conn: c, p: p, live: make(map[uint32]bool)}
	h.from.skip = len(clientPreface)
	return h
}

// clientPreface is what an HTTP/2 client sends before its first frame.
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and flags (RFC 9113, section 6).
const (
	frameData      = 0x0
	frameHeaders   = 0x1
	frameRSTStream = 0x3
	flagEndStream  = 0x1
	flagPadded     = 0x8
)

// maxLiveStreams bounds the streams an h2Conn follows: far above any
// MaxConcurrentStreams, gRPC resets a stream beyond that at once, and the
// reset ends it here too. A client past it has its new streams' data
// uncounted: it slows only its own calls.
const maxLiveStreams = 4096

func (h *h2Conn) Read(b []byte) (int, error) {
	n, err := h.Conn.Read(b)
	if n > 0 {
		h.from.scan(b[:n], h.clientFrame, h.clientData)
	}
	return n, err
}

func (h *h2Conn) Write(b []byte) (int, error) {
	h.to.scan(b, h.serverFrame, nil) // before the client can answer what b says
	return h.Conn.Write(b)
}

// clientFrame follows the streams a client frame opens or ends, at its
// header; a DATA frame ends its stream only once its data is counted.
func (h *h2Conn) clientFrame(f *frameScanner, done bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case done && f.typ == frameData && f.flags&flagEndStream != 0, !done && f.typ == frameRSTStream:
		delete(h.live, f.stream)
	case !done && f.typ == frameHeaders && f.flags&flagEndStream == 0 && len(h.live) < maxLiveStreams:
		h.live[f.stream] = true
	}
}

// serverFrame ends the stream our reset or trailers end.
func (h *h2Conn) serverFrame(f *frameScanner, done bool) {
	if done || !(f.typ == frameRSTStream || f.typ == frameHeaders && f.flags&flagEndStream != 0) {
		return
	}
	h.mu.Lock()
	delete(h.live, f.stream)
	h.mu.Unlock()
}

func (h *h2Conn) clientData(f *frameScanner, n int) {
	h.mu.Lock()
	live := h.live[f.stream]
	h.mu.Unlock()
	if live {
		h.p.read.Add(int64(n))
	}
}

// frameScanner follows one direction's HTTP/2 frames through the bytes as
// they pass, in pieces of any size, reading the frames' headers only.
type frameScanner struct {
	skip int // bytes to pass before the first frame (the client preface)

	head  [9]byte
	headN int // bytes of head read; 9 once the frame's payload is passing

	// The current frame.
	typ, flags byte
	stream     uint32
	length     int // its payload's length
	off        int // payload bytes passed so far
	pad        int // a padded DATA frame's padding; -1 until its first byte is read
}

// scan passes b. frame is called at each frame's header (done false) and
// at its end (done true); data, if not nil, with each piece of a DATA
// frame's payload that is data (neither its pad length nor its padding),
// as it passes.
func (s *frameScanner) scan(b []byte, frame func(f *frameScanner, done bool), data func(f *frameScanner, n int)) {
	for len(b) > 0 {
		if s.skip > 0 {
			k := min(s.skip, len(b))
			s.skip -= k
			b = b[k:]
			continue
		}
		if s.headN < len(s.head) {
			k := copy(s.head[s.headN:], b)
			s.headN += k
			b = b[k:]
			if s.headN < len(s.head) {
				return
			}
			s.length = int(s.head[0])<<16 | int(s.head[1])<<8 | int(s.head[2])
			s.typ, s.flags = s.head[3], s.head[4]
			s.stream = binary.BigEndian.Uint32(s.head[5:]) & (1<<31 - 1)
			s.off, s.pad = 0, 0
			if s.typ == frameData && s.flags&flagPadded != 0 {
				s.pad = -1
			}
			frame(s, false)
		} else {
			k := min(s.length-s.off, len(b))
			if s.typ == frameData && data != nil {
				if n := s.dataIn(b[:k]); n > 0 {
					data(s, n)
				}
			}
			s.off += k
			b = b[k:]
		}
		if s.off == s.length {
			s.headN = 0
			frame(s, true)
		}
	}
}

// dataIn is how much of piece, the payload bytes from s.off on, is data.
func (s *frameScanner) dataIn(piece []byte) int {
	start := 0
	if s.pad != 0 {
		start = 1
		if s.pad < 0 && s.off == 0 && len(piece) > 0 {
			s.pad = int(piece[0])
		}
	}
	end := s.length - max(s.pad, 0)
	from, to := max(s.off, start), min(s.off+len(piece), end)
	return max(0, to-from)
}
