package grpcapi

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type callKey struct{}

// ctxHandler records, for each "rpc" record, the callKey value of the
// context it was logged under.
type ctxHandler struct {
	mu   sync.Mutex
	seen []any
}

func (h *ctxHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *ctxHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *ctxHandler) WithGroup(string) slog.Handler            { return h }

func (h *ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "rpc" {
		h.mu.Lock()
		h.seen = append(h.seen, ctx.Value(callKey{}))
		h.mu.Unlock()
	}
	return nil
}

// A call's log line is written under the call's context, so that a handler
// can add what the context carries.
func TestLogCallUsesTheCallsContext(t *testing.T) {
	fail := status.Error(codes.Internal, "boom")
	tests := []struct {
		name string
		call func(log *slog.Logger, ctx context.Context) error
	}{
		{"unary", func(log *slog.Logger, ctx context.Context) error {
			_, err := observeUnary(log, nil)(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/s/M"},
				func(context.Context, any) (any, error) { return nil, fail })
			return err
		}},
		{"stream", func(log *slog.Logger, ctx context.Context) error {
			return observeStream(log, nil)(nil, &ctxStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/s/S"},
				func(any, grpc.ServerStream) error { return fail })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &ctxHandler{}
			ctx := context.WithValue(context.Background(), callKey{}, tt.name)
			if err := tt.call(slog.New(h), ctx); status.Code(err) != codes.Internal {
				t.Fatalf("err = %v, want the handler's", err)
			}
			if got, want := h.seen, []any{tt.name}; len(got) != 1 || got[0] != want[0] {
				t.Fatalf("rpc records were logged under contexts carrying %v, want %v", got, want)
			}
		})
	}
}

// SetHeader is what observeStream asks of a stream besides its context.
func (s *ctxStream) SetHeader(metadata.MD) error { return nil }
