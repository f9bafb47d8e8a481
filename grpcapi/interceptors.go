package grpcapi

import (
	"context"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/wirecodec"
)

// ServerOptions returns the codec every worker speaks (wirecodec: shard
// bytes sent without a copy) and the interceptors it runs, outermost
// first: panic recovery (a panic becomes Internal without leaking the stack
// to the client), the request id and one access line per call (observe.go,
// telling WithChunkObserver's observer of chunk calls), those of
// WithInterceptors (metrics), then, with WithAuth, the bearer token check.
// Logging and metrics sit outside auth so that refused calls are counted
// too (method and Unauthenticated, never the token).
func ServerOptions(log *slog.Logger, opts ...Option) []grpc.ServerOption {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	codec := wirecodec.Codec{}.Lenient()
	if o.codec != nil {
		codec = *o.codec
	}
	// The malformed check must see every request the codec decodes: no
	// interceptor before it ends a call without its handler.
	unary := []grpc.UnaryServerInterceptor{recoverUnary(log), observeUnary(log, o.chunks), malformedUnary(codec, o.auth)}
	stream := []grpc.StreamServerInterceptor{recoverStream(log), observeStream(log, o.chunks), malformedStream(codec)}
	unary = append(unary, o.unary...)
	stream = append(stream, o.stream...)
	if o.auth != nil {
		unary = append(unary, o.auth.UnaryServerInterceptor())
		stream = append(stream, o.auth.StreamServerInterceptor())
	}
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}

// Option adds an interceptor to ServerOptions.
type Option func(*options)

type options struct {
	codec  *wirecodec.Codec // nil: a Lenient one of ServerOptions' own
	creds  credentials.TransportCredentials
	auth   *TokenAuth
	chunks ChunkObserver
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
}

// WithCredentials serves with creds (TLS) instead of plaintext; only
// GRPCOptions takes it, which must own the server's credentials (see
// countingCreds): add no grpc.Creds of your own.
func WithCredentials(creds credentials.TransportCredentials) Option {
	return func(o *options) { o.creds = creds }
}

// WithAuth requires a bearer token on every call auth does not exempt. A
// nil auth is no check.
func WithAuth(auth *TokenAuth) Option {
	return func(o *options) { o.auth = auth }
}

// WithChunkObserver tells obs how every chunk call ended.
func WithChunkObserver(obs ChunkObserver) Option {
	return func(o *options) { o.chunks = obs }
}

// WithInterceptors adds interceptors after the access log, before auth.
func WithInterceptors(unary grpc.UnaryServerInterceptor, stream grpc.StreamServerInterceptor) Option {
	return func(o *options) {
		o.unary = append(o.unary, unary)
		o.stream = append(o.stream, stream)
	}
}

func recovered(log *slog.Logger, method string, p any) error {
	log.Error("panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s", method)
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = recovered(log, info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}

// withCodec serves with codec, which must be Lenient: GRPCOptions' own,
// which keeps the read budget's releases (OnWritten).
func withCodec(codec wirecodec.Codec) Option {
	return func(o *options) { o.codec = &codec }
}

// malformedUnary answers a request whose bytes did not decode (see
// wirecodec.Codec.Lenient) with InvalidArgument: the client's fault, not
// the Internal gRPC would give. A caller auth (when set) refuses is told
// Unauthenticated instead, as for a request that decodes: what the server
// makes of a message is not for a caller without a token to learn. (A
// stream's messages decode only once auth has let the stream in.)
func malformedUnary(codec wirecodec.Codec, auth *TokenAuth) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := codec.Malformed(req); err != nil {
			if auth != nil {
				if err := auth.authorize(ctx, info.FullMethod); err != nil {
					return nil, err
				}
			}
			return nil, malformedStatus(err)
		}
		return handler(ctx, req)
	}
}

// malformedStream is malformedUnary for each message a stream receives.
func malformedStream(codec wirecodec.Codec) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, checkedStream{ss, codec})
	}
}

type checkedStream struct {
	grpc.ServerStream
	codec wirecodec.Codec
}

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.codec.Malformed(m); err != nil {
		return malformedStatus(err)
	}
	return nil
}

func malformedStatus(err error) error {
	return status.Errorf(codes.InvalidArgument, "the request message does not decode: %v", err)
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = recovered(log, info.FullMethod, p)
			}
		}()
		return handler(srv, ss)
	}
}
