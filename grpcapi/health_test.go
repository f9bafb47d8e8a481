package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
)

func TestCheckHealth(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{WorkerID: "w1", VideoCodec: "libx264", MaxConcurrentTasks: 3, HealthTTL: time.Nanosecond})
	ctx := context.Background()
	resp, err := h.client.CheckHealth(ctx, &pb.HealthCheckRequest{MasterId: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetIsHealthy() || resp.GetWorkerId() != "w1" || resp.GetMaxConcurrentTasks() != 3 ||
		resp.GetVideoCodec() != "libx264" || resp.GetMemoryUsageBytes() <= 0 || resp.GetStorageFreeBytes() <= 0 {
		t.Fatalf("CheckHealth = %v", resp)
	}
	if got := resp.GetFeatures(); !slices.Equal(got, []string{FeatureFrameTrim}) {
		t.Fatalf("CheckHealth features = %q, want [%q]", got, FeatureFrameTrim)
	}

	// A store that cannot be written makes the worker unhealthy, saying why.
	tmp := h.store.TempDir()
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err = h.client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetIsHealthy() || !strings.Contains(resp.GetMessage(), "unhealthy") {
		t.Fatalf("CheckHealth with an unwritable store = %v", resp)
	}
	os.Remove(tmp)
	os.Mkdir(tmp, 0o755)

	h.srv.SetDraining()
	resp, err = h.client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetIsHealthy() || !strings.Contains(resp.GetMessage(), "draining") {
		t.Fatalf("CheckHealth while draining = %v", resp)
	}
}

// checkEncoder is a fakeEncoder whose Check waits for release (or its
// ctx), counting runs and signalling each start on started.
type checkEncoder struct {
	fakeEncoder
	started chan struct{}
	release chan struct{}
	err     error // Check's result once released
	checks  atomic.Int32
}

func newCheckEncoder(t *testing.T, err error) *checkEncoder {
	e := &checkEncoder{started: make(chan struct{}, 64), release: make(chan struct{}), err: err}
	t.Cleanup(e.unblock)
	return e
}

func (e *checkEncoder) unblock() {
	select {
	case <-e.release:
	default:
		close(e.release)
	}
}

func (e *checkEncoder) Check(ctx context.Context) error {
	e.checks.Add(1)
	e.started <- struct{}{}
	select {
	case <-e.release:
		return e.err
	case <-ctx.Done():
		return fmt.Errorf("ffmpeg killed: %w", ctx.Err())
	}
}

// A caller whose context ends while the dependency check runs gets its
// own error at once; the check carries on, and its result (not the
// caller's cancellation) is what everyone is told, for HealthTTL.
func TestHealthyCallerGivingUpDoesNotPoison(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // the caller's deadline; 0: it cancels once the check started
		wantErr error
	}{
		{"cancelled", 0, context.Canceled},
		{"deadline", time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := newCheckEncoder(t, nil)
			h := newHarness(t, enc, Config{HealthTTL: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.timeout > 0 {
				var stop context.CancelFunc
				ctx, stop = context.WithTimeout(ctx, tt.timeout)
				defer stop()
			}
			errc := make(chan error, 1)
			go func() { errc <- h.srv.Healthy(ctx) }()
			<-enc.started
			if tt.timeout == 0 {
				cancel()
			}
			if err := <-errc; !errors.Is(err, tt.wantErr) {
				t.Fatalf("Healthy with a caller that gave up = %v, want %v", err, tt.wantErr)
			}
			enc.unblock()
			if err := h.srv.Healthy(context.Background()); err != nil {
				t.Fatalf("Healthy after the check finished = %v, want healthy", err)
			}
			if n := enc.checks.Load(); n != 1 {
				t.Fatalf("%d checks ran, want 1 (the one the caller left, kept)", n)
			}
		})
	}
}

// Concurrent callers share one check, whatever their contexts.
func TestHealthySharesOneCheck(t *testing.T) {
	enc := newCheckEncoder(t, nil)
	h := newHarness(t, enc, Config{HealthTTL: time.Hour})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	contexts := []context.Context{context.Background(), done, context.Background(), done, context.Background()}
	errs := make(chan error, len(contexts))
	for _, ctx := range contexts {
		go func() { errs <- h.srv.Healthy(ctx) }()
	}
	<-enc.started
	enc.unblock()
	for range contexts {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Healthy = %v, want healthy or the caller's own cancellation", err)
		}
	}
	if n := enc.checks.Load(); n != 1 {
		t.Fatalf("%d checks ran for %d concurrent callers, want 1", n, len(contexts))
	}
}

// What the dependencies say is kept for HealthTTL, a check that outlives
// HealthTimeout included (ffmpeg hanging is a real failure); a check cut
// short by the server stopping is not kept.
func TestHealthyKeepsOnlyTheWorkersOwnResults(t *testing.T) {
	tests := []struct {
		name     string
		encErr   error
		release  bool // let Check return encErr; else it waits for its ctx
		stopRun  bool // end the server's Run while the check runs
		wantErr  string
		wantKept bool
	}{
		{"healthy", nil, true, false, "", true},
		{"encoder missing", encode.ErrUnavailable, true, false, "encoder unavailable", true},
		{"check outlives its timeout", nil, false, false, "deadline exceeded", true},
		{"server stopping", nil, false, true, "canceled", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := newCheckEncoder(t, tt.encErr)
			cfg := Config{HealthTTL: time.Hour}
			if !tt.release && !tt.stopRun {
				cfg.HealthTimeout = 10 * time.Millisecond
			}
			h := newHarness(t, enc, cfg)
			runCtx, stopRun := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { h.srv.Run(runCtx); close(ran) }()
			defer func() { stopRun(); <-ran }()
			errc := make(chan error, 1)
			go func() { errc <- h.srv.Healthy(context.Background()) }()
			<-enc.started
			switch {
			case tt.release:
				enc.unblock()
			case tt.stopRun:
				stopRun()
			}
			err := <-errc
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Healthy = %v, want %q", err, tt.wantErr)
			}
			h.srv.health.mu.Lock()
			kept := !h.srv.health.checkedAt.IsZero()
			h.srv.health.mu.Unlock()
			if kept != tt.wantKept {
				t.Fatalf("result kept = %v, want %v", kept, tt.wantKept)
			}
			if tt.wantKept {
				again := h.srv.Healthy(context.Background())
				if fmt.Sprint(again) != fmt.Sprint(err) || enc.checks.Load() != 1 {
					t.Fatalf("second Healthy = %v after %d checks, want the kept %v after 1", again, enc.checks.Load(), err)
				}
			}
		})
	}
}

// CheckHealth called with a context that ends before the check does
// answers with that context's status, never "unhealthy".
func TestCheckHealthCallerGivesUp(t *testing.T) {
	enc := newCheckEncoder(t, nil)
	h := newHarness(t, enc, Config{HealthTTL: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		resp *pb.HealthCheckResponse
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := h.srv.CheckHealth(ctx, &pb.HealthCheckRequest{})
		res <- result{resp, err}
	}()
	<-enc.started
	cancel()
	r := <-res
	if r.resp != nil || status.Code(r.err) != codes.Canceled {
		t.Fatalf("CheckHealth of a caller that gave up = %v, %v; want no answer, Canceled", r.resp, r.err)
	}
	enc.unblock()
	resp, err := h.client.CheckHealth(context.Background(), &pb.HealthCheckRequest{})
	if err != nil || !resp.GetIsHealthy() {
		t.Fatalf("CheckHealth afterwards = %v, %v; want healthy", resp, err)
	}
	// A kept result needs no waiting: it is the answer, whatever ctx says.
	if resp, err := h.srv.CheckHealth(ctx, &pb.HealthCheckRequest{}); err != nil || !resp.GetIsHealthy() {
		t.Fatalf("CheckHealth with a kept result and a cancelled ctx = %v, %v; want healthy", resp, err)
	}
}

// A failed check is kept for failedHealthTTL only: the worker that
// recovers says so again then, not HealthTTL later; a healthy result is
// kept for HealthTTL.
func TestHealthyRecoversSoon(t *testing.T) {
	enc := newCheckEncoder(t, encode.ErrUnavailable)
	h := newHarness(t, enc, Config{HealthTTL: time.Hour})
	enc.unblock()
	if err := h.srv.Healthy(context.Background()); err == nil || !strings.Contains(err.Error(), "encoder unavailable") {
		t.Fatalf("Healthy = %v, want the encoder unavailable", err)
	}
	age := func(d time.Duration) { // as if the last check ran d ago
		h.srv.health.mu.Lock()
		h.srv.health.checkedAt = time.Now().Add(-d)
		h.srv.health.mu.Unlock()
	}
	enc.err = nil // the encoder is back
	age(failedHealthTTL / 2)
	if err := h.srv.Healthy(context.Background()); err == nil || enc.checks.Load() != 1 {
		t.Fatalf("Healthy = %v after %d checks, want the kept failure after 1", err, enc.checks.Load())
	}
	age(failedHealthTTL)
	if err := h.srv.Healthy(context.Background()); err != nil || enc.checks.Load() != 2 {
		t.Fatalf("Healthy = %v after %d checks, want healthy, checked again", err, enc.checks.Load())
	}
	age(10 * failedHealthTTL)
	if err := h.srv.Healthy(context.Background()); err != nil || enc.checks.Load() != 2 {
		t.Fatalf("Healthy = %v after %d checks, want the kept healthy result", err, enc.checks.Load())
	}
}
