package reqid_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/internal/reqid"
)

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{
		"":                                  false,
		"abc":                               true,
		"job-1.chunk_2:try-3":               true,
		strings.Repeat("x", reqid.MaxLen):   true,
		strings.Repeat("x", reqid.MaxLen+1): false,
		"a b":                               false,
		"a\"b":                              false,
		"é":                                 false,
	} {
		if got := reqid.Valid(id); got != want {
			t.Errorf("Valid(%q) = %v, want %v", id, got, want)
		}
	}
	if a, b := reqid.New(), reqid.New(); !reqid.Valid(a) || a == b {
		t.Errorf("New gave %q and %q", a, b)
	}
}

// Records logged under a context with an id carry it once, whether or not
// the record names it itself.
func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(reqid.Handler(slog.NewTextHandler(&buf, nil))).With("k", "v")
	ctx := reqid.With(context.Background(), "r1")
	log.InfoContext(ctx, "one")
	log.InfoContext(ctx, "two", reqid.LogKey, "r1")
	log.Info("three")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i, line := range lines[:2] {
		if n := strings.Count(line, "request_id=r1"); n != 1 || !strings.Contains(line, "k=v") {
			t.Errorf("line %d: %q", i, line)
		}
	}
	if strings.Contains(lines[2], "request_id") {
		t.Errorf("a record without an id in its context: %q", lines[2])
	}
}
