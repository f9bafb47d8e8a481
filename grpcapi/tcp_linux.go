package grpcapi

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// grpcKeepaliveTimeout is gRPC's default server keepalive timeout, which
// it sets as TCP_USER_TIMEOUT on the *net.TCPConn it serves: a peer gone
// without a word is given up after it, not after the kernel's 15 minutes
// of retransmissions. It cannot on a wrapped connection (Listener), so
// the listener sets it.
const grpcKeepaliveTimeout = 20 * time.Second

// setUserTimeout sets TCP_USER_TIMEOUT on c, a TCP connection, as gRPC
// would; other connections are left alone.
func setUserTimeout(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(grpcKeepaliveTimeout.Milliseconds()))
	})
}
