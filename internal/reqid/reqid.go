// Package reqid carries a call's request id: taken from the caller when it
// is well formed, generated otherwise, kept in the call's context so that
// logs and errors below the gRPC layer (encode, the logger) can name it
// without knowing gRPC.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// MetadataKey is the gRPC metadata key a request id travels under, both
// ways.
const MetadataKey = "x-request-id"

// MaxLen bounds a caller's request id: longer ones are replaced, so that a
// caller cannot make every log line of its call arbitrarily long.
const MaxLen = 64

// LogKey is the attribute under which Handler logs the id.
const LogKey = "request_id"

// Valid reports whether id may be used as a request id: 1 to MaxLen
// characters of [A-Za-z0-9._:-], nothing that could break a log line or
// pass for another attribute.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// New returns a fresh request id: 16 random hex digits.
func New() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Handler wraps h so that every record logged under a context carrying a
// request id has it as LogKey, unless the record names one itself.
func Handler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" && !hasKey(r, LogKey) {
		r = r.Clone()
		r.AddAttrs(slog.String(LogKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{h.Handler.WithAttrs(attrs)}
}
func (h handler) WithGroup(name string) slog.Handler { return handler{h.Handler.WithGroup(name)} }

func hasKey(r slog.Record, k string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == k
		return !found
	})
	return found
}
