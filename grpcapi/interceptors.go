package grpcapi

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerOptions returns the interceptors every worker runs, outermost
// first: panic recovery (a panic becomes Internal without leaking the stack
// to the client), one log line per call, then, with WithAuth, the bearer
// token check. Logging sits outside auth so that refused calls are logged
// too (method and Unauthenticated, never the token).
func ServerOptions(log *slog.Logger, opts ...Option) []grpc.ServerOption {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	unary := []grpc.UnaryServerInterceptor{recoverUnary(log), logUnary(log)}
	stream := []grpc.StreamServerInterceptor{recoverStream(log), logStream(log)}
	if o.auth != nil {
		unary = append(unary, o.auth.UnaryServerInterceptor())
		stream = append(stream, o.auth.StreamServerInterceptor())
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}

// Option adds an interceptor to ServerOptions.
type Option func(*options)

type options struct {
	auth *TokenAuth
}

// WithAuth requires a bearer token on every call auth does not exempt. A
// nil auth is no check.
func WithAuth(auth *TokenAuth) Option {
	return func(o *options) { o.auth = auth }
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

// logCall logs one finished call under its own context, so that a handler
// that reads the context (trace or request ids) sees the call's.
func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	switch code {
	case codes.OK, codes.NotFound, codes.InvalidArgument, codes.Canceled:
	case codes.Internal, codes.DataLoss, codes.Unknown:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	if code != codes.OK && level == slog.LevelDebug {
		level = slog.LevelInfo
	}
	log.Log(ctx, level, "rpc", "method", method, "code", code.String(),
		"duration", time.Since(start).Round(time.Microsecond), "error", errString(err))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return status.Convert(err).Message()
}

func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, start, err)
		return resp, err
	}
}

func logStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), log, info.FullMethod, start, err)
		return err
	}
}
