package grpcapi

import (
	"net"
	"testing"
)

// Connections are told apart by both ends, and a newer connection of the
// same name takes the name over: no connection goes uncounted, and the
// older one's end does not take the newer one's counts away.
func TestConnBytes(t *testing.T) {
	var c connBytes
	client := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}
	conn := func(local string) net.Conn {
		a, _ := net.Pipe()
		return addrConn{a, &net.TCPAddr{IP: net.ParseIP(local), Port: 7000}, client}
	}
	c1, c2 := conn("127.0.0.1"), conn("127.0.0.2")
	k1, k2 := connKey(c1.LocalAddr(), c1.RemoteAddr()), connKey(c2.LocalAddr(), c2.RemoteAddr())
	if k1 == k2 {
		t.Fatalf("one client port to two local addresses: both named %q", k1)
	}
	p1, p2 := c.add(k1, c1), c.add(k2, c2)
	if c.lookup(k1) != p1 || c.lookup(k2) != p2 {
		t.Fatal("a connection's counts are not found by its name")
	}
	newer := c.add(k1, c1)
	c.remove(p1) // the older one ends after the newer one came
	if c.lookup(k1) != newer {
		t.Error("the older connection's end took the newer one's counts away")
	}
	c.remove(newer)
	c.remove(p2)
	if len(c.conns) != 0 {
		t.Errorf("closed connections are still registered: %v", c.conns)
	}
	if connKey(nil, client) != "" {
		t.Error("a connection without a local address was named")
	}
}

// addrConn is a net.Conn with the addresses it is given.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (a addrConn) LocalAddr() net.Addr  { return a.local }
func (a addrConn) RemoteAddr() net.Addr { return a.remote }
