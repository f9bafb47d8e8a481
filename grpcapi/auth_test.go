package grpcapi

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

const (
	tokenA = "token-a-0123456789abcdef"
	tokenB = "token-b-fedcba9876543210"
)

func newAuth(t *testing.T, tokens ...string) *TokenAuth {
	t.Helper()
	a, err := NewTokenAuth(tokens)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTokenAuth(t *testing.T) {
	const (
		process    = "/replication.VideoProcessingService/ProcessChunk"
		healthChk  = "/grpc.health.v1.Health/Check"
		healthWtch = "/grpc.health.v1.Health/Watch"
		reflect    = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	)
	a := newAuth(t, tokenA, tokenB)
	tests := []struct {
		name   string
		method string
		md     metadata.MD // nil: no incoming metadata at all
		want   codes.Code
		msg    string // part of the refusal
	}{
		{"no metadata", process, nil, codes.Unauthenticated, "missing bearer token"},
		{"no authorization", process, metadata.Pairs("x-other", "1"), codes.Unauthenticated, "missing bearer token"},
		{"wrong scheme", process, metadata.Pairs("authorization", "Basic "+tokenA), codes.Unauthenticated, "not \"Bearer <token>\""},
		{"bare token", process, metadata.Pairs("authorization", tokenA), codes.Unauthenticated, "not \"Bearer <token>\""},
		{"empty bearer", process, metadata.Pairs("authorization", "Bearer "), codes.Unauthenticated, "not \"Bearer <token>\""},
		{"wrong token", process, metadata.Pairs("authorization", "Bearer "+tokenA+"x"), codes.Unauthenticated, "invalid bearer token"},
		{"prefix of a token", process, metadata.Pairs("authorization", "Bearer "+tokenA[:MinTokenLength]), codes.Unauthenticated, "invalid bearer token"},
		{"two values", process, metadata.Pairs("authorization", "Bearer "+tokenA, "authorization", "Bearer "+tokenB), codes.Unauthenticated, "more than one"},
		{"right token", process, metadata.Pairs("authorization", "Bearer "+tokenA), codes.OK, ""},
		{"second of two tokens", process, metadata.Pairs("authorization", "Bearer "+tokenB), codes.OK, ""},
		{"scheme is case-insensitive", process, metadata.Pairs("authorization", "bearer "+tokenA), codes.OK, ""},
		{"health check without token", healthChk, nil, codes.OK, ""},
		{"health watch with a wrong token", healthWtch, metadata.Pairs("authorization", "Bearer nope"), codes.OK, ""},
		{"reflection without token", reflect, nil, codes.Unauthenticated, "missing bearer token"},
		{"look-alike of health", "/grpc.health.v1.HealthX/Check", nil, codes.Unauthenticated, "missing bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tt.md)
			}
			called := false
			handler := func(context.Context, any) (any, error) { called = true; return "ok", nil }
			_, err := a.UnaryServerInterceptor()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: tt.method}, handler)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
			if called != (tt.want == codes.OK) {
				t.Fatalf("handler called = %v, want %v", called, tt.want == codes.OK)
			}
			if err == nil {
				return
			}
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not say %q", msg, tt.msg)
			}
			if strings.Contains(msg, "token-") {
				t.Errorf("message %q echoes a token", msg)
			}

			// The stream interceptor decides the same way.
			ss := &ctxStream{ctx: ctx}
			streamCalled := false
			serr := a.StreamServerInterceptor()(nil, ss, &grpc.StreamServerInfo{FullMethod: tt.method},
				func(any, grpc.ServerStream) error { streamCalled = true; return nil })
			if status.Code(serr) != tt.want || streamCalled {
				t.Errorf("stream: code %v, handler called %v", status.Code(serr), streamCalled)
			}
		})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

func TestNewTokenAuth_Refuses(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		want   string
	}{
		{"no tokens", nil, "no tokens"},
		{"short", []string{tokenA, "short-secret"}, "token 2 of 2: shorter than 16"},
		{"space", []string{"secret with spaces inside"}, "token 1 of 1: holds a space"},
		{"newline", []string{"secret-0123456789\n"}, "token 1 of 1: holds a space"},
		{"non-ascii", []string{"sécret-0123456789"}, "holds a space, a control or a non-ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTokenAuth(tt.tokens)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			for _, tok := range tt.tokens {
				if strings.Contains(err.Error(), tok) {
					t.Fatalf("error %q quotes a token", err)
				}
			}
		})
	}
}

// CheckTokens names every bad token, by position only, and passes an
// empty list (whether a list may be empty is the caller's to say).
func TestCheckTokens(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		want   []string
	}{
		{"none", nil, nil},
		{"good", []string{tokenA, tokenB}, nil},
		{"one bad", []string{tokenA, "short-secret"}, []string{"token 2 of 2: shorter than 16 characters"}},
		{"every bad one", []string{"tiny", tokenA, "with a space in it"},
			[]string{"token 1 of 3: shorter than 16", "token 3 of 3: holds a space"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := CheckTokens(tt.tokens)
			if got, want := len(errs), len(tt.want); got != want {
				t.Fatalf("CheckTokens = %v, want %d errors", errs, want)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want %q", i, err, tt.want[i])
				}
				for _, tok := range tt.tokens {
					if strings.Contains(err.Error(), tok) {
						t.Errorf("error %q quotes a token", err)
					}
				}
			}
		})
	}
}

func TestTokenAuth_Exempt(t *testing.T) {
	a, err := NewTokenAuth([]string{tokenA}, WithAuthExempt(func(m string) bool { return m == "/x.Y/Open" }))
	if err != nil {
		t.Fatal(err)
	}
	ok := func(context.Context, any) (any, error) { return nil, nil }
	if _, err := a.UnaryServerInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x.Y/Open"}, ok); err != nil {
		t.Errorf("exempt method: %v", err)
	}
	if _, err := a.UnaryServerInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}, ok); status.Code(err) != codes.Unauthenticated {
		t.Errorf("health with a selector that does not exempt it: %v", err)
	}
}

// Through a real server: the chain ServerOptions builds refuses before the
// handler, logs the refusal without the token, and lets health through.
func TestServerOptions_WithAuth(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gs := grpc.NewServer(ServerOptions(log, WithAuth(newAuth(t, tokenA)))...)
	pb.RegisterVideoProcessingServiceServer(gs, pb.UnimplementedVideoProcessingServiceServer{})
	healthpb.RegisterHealthServer(gs, grpchealth.NewServer())
	reflection.Register(gs)
	conn := serveBufconn(t, gs)
	client := pb.NewVideoProcessingServiceClient(conn)
	ctx := t.Context()
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}

	if _, err := client.ListShards(ctx, &pb.ListShardsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("unary without token: %v", err)
	}
	const wrong = "wrong-token-0123456789"
	if _, err := client.ListShards(withToken(wrong), &pb.ListShardsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("unary with a wrong token: %v", err)
	}
	// Past auth, the (unimplemented) handler answers.
	if _, err := client.ListShards(withToken(tokenA), &pb.ListShardsRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("unary with the token: %v, want the handler's Unimplemented", err)
	}
	stream, err := client.UploadChunk(ctx)
	if err == nil {
		_, err = stream.CloseAndRecv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("stream without token: %v", err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without token: %v", err)
	}
	refl, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err == nil {
		// Send may see the refusal as io.EOF; Recv has the status.
		_ = refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		_, err = refl.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection without token: %v", err)
	}

	gs.Stop()
	out := logs.String()
	if !strings.Contains(out, "code=Unauthenticated") {
		t.Errorf("refusals are not logged:\n%s", out)
	}
	if strings.Contains(out, tokenA) || strings.Contains(out, wrong) {
		t.Errorf("the log holds a token:\n%s", out)
	}
}

// TestAuth_BeforeAChunkSlot: a caller without a token is refused when its
// headers arrive, before its ProcessChunk takes one of the worker's unary
// slots: one that never sends its message (or trickles it for an upload's
// length) holds none, and a caller with the token is served beside it.
func TestAuth_BeforeAChunkSlot(t *testing.T) {
	w := newTCPWorker(t, Config{MaxConcurrentTasks: 1, MaxUnaryChunks: 1, UploadIdleTimeout: time.Minute}, WithAuth(newAuth(t, tokenA)))
	ctx := t.Context()
	conn, err := grpc.NewClient(w.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Headers only, the message never sent.
	held, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, pb.VideoProcessingService_ProcessChunk_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- held.RecvMsg(new(pb.ProcessChunkResponse)) }()
	select {
	case err := <-got:
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("a chunk call without a token, its message not sent: %v, want Unauthenticated", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a chunk call without a token was not refused before its message came")
	}
	client := pb.NewVideoProcessingServiceClient(conn)
	withToken := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokenA)
	if _, err := client.ProcessChunk(withToken, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("data")}); err != nil {
		t.Errorf("a chunk call with the token: %v", err)
	}
}
