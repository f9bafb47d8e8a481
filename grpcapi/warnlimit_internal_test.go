package grpcapi

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestWarnLimiter: one line a period of each message, the next one passed
// saying how many were dropped; other messages pass on their own.
func TestWarnLimiter(t *testing.T) {
	var buf bytes.Buffer
	l := newWarnLimiter(slog.New(slog.NewTextHandler(&buf, nil)), 50*time.Millisecond)
	for range 100 {
		l.warn("refused", "n", 1)
	}
	l.warn("other")
	time.Sleep(60 * time.Millisecond)
	l.warn("refused", "n", 2)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "refused") || strings.Contains(lines[0], "dropped") ||
		!strings.Contains(lines[1], "other") || !strings.Contains(lines[2], "n=2 dropped=99") {
		t.Errorf("lines:\n%s", buf.String())
	}
}
