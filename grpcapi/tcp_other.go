//go:build !linux

package grpcapi

import "net"

// setUserTimeout does nothing where gRPC sets no TCP_USER_TIMEOUT either.
func setUserTimeout(net.Conn) {}
