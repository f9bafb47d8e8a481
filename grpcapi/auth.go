package grpcapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	pb "github.com/videoshard/videoshard/proto"
)

// MinTokenLength is the shortest bearer token NewTokenAuth accepts.
const MinTokenLength = 16

// TokenAuth is the authentication interceptor pair: every call must carry
// the metadata "authorization: Bearer <token>" with one of the configured
// tokens, except the methods its selector exempts (by default only the
// standard grpc.health.v1 service, so health probes and load balancers need
// no secret). Server reflection is not exempt: the service list is only for
// callers that hold a token.
//
// Tokens are compared in constant time, after hashing both sides with
// SHA-256 so that neither the content nor the length of a configured token
// leaks through timing; every configured token is compared on every call.
type TokenAuth struct {
	hashes [][sha256.Size]byte
	exempt func(fullMethod string) bool
}

// TokenAuthOption configures NewTokenAuth.
type TokenAuthOption func(*TokenAuth)

// WithAuthExempt replaces the selector of methods that need no token.
// fullMethod is "/package.Service/Method".
func WithAuthExempt(exempt func(fullMethod string) bool) TokenAuthOption {
	return func(a *TokenAuth) { a.exempt = exempt }
}

// HealthMethod reports whether fullMethod belongs to the standard
// grpc.health.v1 service: the default exemption of TokenAuth.
func HealthMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/"+healthpb.Health_ServiceDesc.ServiceName+"/")
}

// NewTokenAuth returns a TokenAuth that accepts any of tokens. It refuses
// an empty list and tokens that are shorter than MinTokenLength or hold
// anything but printable ASCII without spaces (what fits in a header);
// its errors name the token by position, never by value.
func NewTokenAuth(tokens []string, opts ...TokenAuthOption) (*TokenAuth, error) {
	if len(tokens) == 0 {
		return nil, errors.New("no tokens")
	}
	if errs := CheckTokens(tokens); len(errs) > 0 {
		return nil, errs[0]
	}
	a := &TokenAuth{exempt: HealthMethod}
	for _, tok := range tokens {
		a.hashes = append(a.hashes, sha256.Sum256([]byte(tok)))
	}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// CheckTokens reports why each of tokens that cannot be a bearer token
// cannot be, naming it by position ("token 2 of 3: ..."), never by value.
func CheckTokens(tokens []string) []error {
	var errs []error
	for i, tok := range tokens {
		if err := CheckToken(tok); err != nil {
			errs = append(errs, fmt.Errorf("token %d of %d: %w", i+1, len(tokens), err))
		}
	}
	return errs
}

// CheckToken reports why tok cannot be a bearer token, without quoting it.
func CheckToken(tok string) error {
	if len(tok) < MinTokenLength {
		return fmt.Errorf("shorter than %d characters", MinTokenLength)
	}
	return pb.CheckBearerToken(tok)
}

// UnaryServerInterceptor checks the token of unary calls.
func (a *TokenAuth) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := a.authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor checks the token of streaming calls before the
// handler reads a single message.
func (a *TokenAuth) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := a.authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// authorize returns nil when the call may proceed, or an Unauthenticated
// status saying what is wrong (never quoting what the client sent).
func (a *TokenAuth) authorize(ctx context.Context, fullMethod string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	return a.authorizeHeader(md, fullMethod)
}

// authorizeHeader is authorize of a call whose header metadata is md.
func (a *TokenAuth) authorizeHeader(md metadata.MD, fullMethod string) error {
	if a.exempt != nil && a.exempt(fullMethod) {
		return nil
	}
	vals := md.Get("authorization")
	switch {
	case len(vals) == 0:
		return toStatus(fmt.Errorf("%w: missing bearer token: send metadata \"authorization: Bearer <token>\"", errUnauthenticated))
	case len(vals) > 1:
		return toStatus(fmt.Errorf("%w: more than one authorization metadata value", errUnauthenticated))
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		// Never echo the value: it may be a secret in the wrong form.
		return toStatus(fmt.Errorf("%w: authorization metadata is not \"Bearer <token>\"", errUnauthenticated))
	}
	if !a.valid(strings.TrimSpace(tok)) {
		return toStatus(fmt.Errorf("%w: invalid bearer token", errUnauthenticated))
	}
	return nil
}

// valid compares tok with every configured token in constant time.
func (a *TokenAuth) valid(tok string) bool {
	got := sha256.Sum256([]byte(tok))
	match := 0
	for i := range a.hashes {
		match |= subtle.ConstantTimeCompare(got[:], a.hashes[i][:])
	}
	return match == 1
}
