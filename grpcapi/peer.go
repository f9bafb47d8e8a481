package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/videoshard/videoshard/master/client"
)

// Peers. ReplicateShard makes this worker call another one, named by its
// caller: whoever may call ReplicateShard could otherwise point the worker
// at any address it can reach, and a peer may be hostile. So only
// addresses the operator allows (PeerConfig.Allow) are dialled, and the
// address checked is the address dialled: a host name is resolved once,
// every address it resolves to must be allowed, and the connection goes to
// the first of them, never through another resolution (which DNS could
// answer differently). What a peer sends is checked as the master checks a
// worker: master/client's DownloadShard bounds the size, verifies the
// checksum and times out a peer that stalls.

// PeerConfig is how the worker calls other workers (ReplicateShard). Zero
// values mean the defaults given per field.
type PeerConfig struct {
	// Allow is the peers that may be dialled (ParsePeerAllow); nil means
	// DefaultPeerAllow, loopback only. An empty list allows none.
	Allow *PeerAllow
	// MaxConcurrent bounds the replications in flight; beyond it
	// ReplicateShard is refused, ResourceExhausted (default 2).
	MaxConcurrent int
	// IdleTimeout abandons a copy that receives nothing for this long
	// (default 30 s); Timeout bounds a whole replication, from the call to
	// the commit (default 10 minutes).
	IdleTimeout, Timeout time.Duration
	// TLS dials peers over TLS (1.2 at least), verified against CAFile
	// (empty: the system's roots), presenting CertFile and KeyFile when set
	// (peers with mutual TLS). ServerName is the name the peer's
	// certificate must carry; empty means the host of source_worker.
	// Without TLS peers are dialled in plaintext.
	TLS                                   bool
	CAFile, CertFile, KeyFile, ServerName string
	// Token, when set, is sent to peers as the bearer token (their
	// auth.tokens); with TLS, only ever over TLS.
	Token string
	// Resolve returns the addresses of a host name (default
	// net.DefaultResolver.LookupNetIP).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Defaults of the zero PeerConfig's fields.
const (
	defaultMaxReplications = 2
	defaultPeerIdleTimeout = 30 * time.Second
	defaultPeerTimeout     = 10 * time.Minute
)

// DefaultPeerConfig is the peer configuration a worker runs with unless
// told otherwise, the zero PeerConfig's defaults spelt out.
func DefaultPeerConfig() PeerConfig {
	allow, err := ParsePeerAllow(DefaultPeerAllow())
	if err != nil {
		panic(err) // the default is a constant list
	}
	return PeerConfig{
		Allow:         allow,
		MaxConcurrent: defaultMaxReplications,
		IdleTimeout:   defaultPeerIdleTimeout,
		Timeout:       defaultPeerTimeout,
	}
}

// DefaultPeerAllow is the default peer.allow: this machine only.
func DefaultPeerAllow() []string { return []string{"127.0.0.0/8", "::1"} }

// withDefaults fills in the zero fields.
func (c PeerConfig) withDefaults() PeerConfig {
	def := DefaultPeerConfig()
	if c.Allow == nil {
		c.Allow = def.Allow
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = def.MaxConcurrent
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = def.IdleTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = def.Timeout
	}
	if c.Resolve == nil {
		c.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	return c
}

// PeerAllow is a parsed peer.allow: the peers a worker may dial.
type PeerAllow struct {
	entries  []string
	prefixes []netip.Prefix   // any port
	addrs    []netip.AddrPort // that port only
}

// maxPeerAllow bounds peer.allow's entries (each address is checked
// against every one).
const maxPeerAllow = 1024

// ParsePeerAllow parses peer.allow entries: an IP address ("10.0.0.5",
// "::1"), an address and port ("10.0.0.5:50061", "[fd00::5]:50061"; that
// port only) or a CIDR ("10.0.0.0/24"). IPv4-mapped IPv6 addresses are
// taken as IPv4. Host names are refused: an entry by name would allow
// whatever DNS answers for it. Errors name the entry.
func ParsePeerAllow(entries []string) (*PeerAllow, error) {
	if len(entries) > maxPeerAllow {
		return nil, fmt.Errorf("%d entries, at most %d", len(entries), maxPeerAllow)
	}
	a := &PeerAllow{}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if err := a.add(e); err != nil {
			return nil, fmt.Errorf("entry %d %q: %w", i+1, e, err)
		}
		a.entries = append(a.entries, e)
	}
	return a, nil
}

func (a *PeerAllow) add(e string) error {
	if strings.Contains(e, "%") {
		return errors.New("an address with a zone is not allowed")
	}
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return errors.New("not a CIDR like 10.0.0.0/24")
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		a.prefixes = append(a.prefixes, p.Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(e); err == nil {
		ip = ip.Unmap()
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	ap, err := netip.ParseAddrPort(e)
	if err != nil {
		return errors.New("not an IP address, IP:PORT or CIDR (host names are not allowed: they would allow whatever DNS answers)")
	}
	if ap.Port() == 0 {
		return errors.New("port 0")
	}
	a.addrs = append(a.addrs, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	return nil
}

// Entries returns the entries a was parsed from.
func (a *PeerAllow) Entries() []string { return append([]string{}, a.entries...) }

// Allows reports whether ap may be dialled.
func (a *PeerAllow) Allows(ap netip.AddrPort) bool {
	ip := ap.Addr().Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	for _, x := range a.addrs {
		if x.Addr() == ip && x.Port() == ap.Port() {
			return true
		}
	}
	return false
}

// peerAddr is a validated source_worker.
type peerAddr struct {
	host string // an IP address or a DNS name
	port uint16
	ip   netip.Addr // set when host is an IP address
}

func (p peerAddr) String() string { return net.JoinHostPort(p.host, strconv.Itoa(int(p.port))) }

// maxHostName is the longest DNS name (RFC 1035).
const maxHostName = 253

// parsePeerAddr validates a source_worker: HOST:PORT, HOST an IP address
// (no zone) or a DNS name of letters, digits and hyphens, PORT 1-65535 in
// decimal.
func parsePeerAddr(s string) (peerAddr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return peerAddr{}, invalidf("source_worker %q is not HOST:PORT", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '0' {
		return peerAddr{}, invalidf("source_worker %q: port must be 1-65535", s)
	}
	p := peerAddr{host: host, port: uint16(n)}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return peerAddr{}, invalidf("source_worker %q: an address with a zone is not allowed", s)
		}
		p.ip = ip.Unmap()
		return p, nil
	}
	if strings.Contains(s, "[") || !validHostName(host) {
		return peerAddr{}, invalidf("source_worker %q: the host is neither an IP address nor a DNS name", s)
	}
	return p, nil
}

// validHostName reports whether h is a DNS name: dot-separated labels of
// 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
// the last not all digits (so "1.2.3" is no name either).
func validHostName(h string) bool {
	if len(h) > maxHostName {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

// resolvePeer returns the address to dial for p: p's own IP, or the first
// address its name resolves to. Every address must be allowed, else the
// error wraps errPeerNotAllowed and nothing was dialled.
func (s *Server) resolvePeer(ctx context.Context, p peerAddr) (netip.AddrPort, error) {
	ips := []netip.Addr{p.ip}
	if !p.ip.IsValid() {
		var err error
		if ips, err = s.cfg.Peer.Resolve(ctx, p.host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: resolve %s: %v", errSourceUnavailable, p.host, err)
		}
		if len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("%w: %s resolves to no address", errSourceUnavailable, p.host)
		}
	}
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), p.port)
		if !s.cfg.Peer.Allow.Allows(ap) {
			if p.ip.IsValid() {
				return netip.AddrPort{}, fmt.Errorf("%w: %s is not in peer.allow", errPeerNotAllowed, p)
			}
			return netip.AddrPort{}, fmt.Errorf("%w: %s resolves to %s, which is not in peer.allow", errPeerNotAllowed, p, ap)
		}
	}
	return netip.AddrPortFrom(ips[0].Unmap(), p.port), nil
}

// dialPeer returns a client of the peer p at the checked address ap,
// with the worker's peer credentials. Its dialer connects to ap and
// nothing else; TLS verifies the peer's certificate for p's host (or
// PeerConfig.ServerName).
func (s *Server) dialPeer(ctx context.Context, p peerAddr, ap netip.AddrPort) (*client.Client, error) {
	target := ap.String()
	opts := s.cfg.Peer.dialOptions(p.host)
	opts.MaxMessageBytes = s.cfg.MaxMessageBytes
	opts.MasterID = s.cfg.WorkerID
	opts.GRPCOptions = []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			if addr != target {
				return nil, fmt.Errorf("refusing to dial %s: only %s was checked against peer.allow", addr, target)
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", target)
		}),
		grpc.WithAuthority(p.String()),
	}
	return client.Dial(ctx, target, opts)
}

// dialOptions are the credentials and timeouts of a call to a peer whose
// host is host.
func (c PeerConfig) dialOptions(host string) client.DialOptions {
	opts := client.DialOptions{Insecure: !c.TLS, Token: c.Token, DownloadIdleTimeout: c.IdleTimeout}
	if c.TLS {
		opts.CAFile, opts.CertFile, opts.KeyFile = c.CAFile, c.CertFile, c.KeyFile
		opts.ServerName = c.ServerName
		if opts.ServerName == "" {
			opts.ServerName = host
		}
	}
	return opts
}

// CheckCredentials reads the files c names (CA, certificate, key) and
// checks the token as a replication would, without dialling, so that a
// bad one stops a worker's start rather than its first replication.
func (c PeerConfig) CheckCredentials() error {
	cl, err := client.Dial(context.Background(), "127.0.0.1:1", c.dialOptions("localhost"))
	if err != nil {
		return err
	}
	return cl.Close()
}
