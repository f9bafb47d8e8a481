package grpcapi

import (
	"log/slog"
	"sync"
	"time"
)

// warnLimiter passes one warning a second of each message and counts the
// rest, which the next line passed reports ("dropped"): what a client's
// calls make the worker log (refusals, calls ended for their pace) must
// not grow the log at the rate a hostile client can send headers. Its
// messages are the code's own constants: a few keys.
type warnLimiter struct {
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	next    map[string]time.Time // when msg may be logged again
	dropped map[string]int
}

func newWarnLimiter(log *slog.Logger, every time.Duration) *warnLimiter {
	return &warnLimiter{log: log, every: every, next: make(map[string]time.Time), dropped: make(map[string]int)}
}

// warn logs msg with args at Warn level unless msg was logged less than
// every ago.
func (l *warnLimiter) warn(msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Before(l.next[msg]) {
		l.dropped[msg]++
		l.mu.Unlock()
		return
	}
	l.next[msg] = now.Add(l.every)
	dropped := l.dropped[msg]
	delete(l.dropped, msg)
	l.mu.Unlock()
	if dropped > 0 {
		args = append(args, "dropped", dropped)
	}
	l.log.Warn(msg, args...)
}
