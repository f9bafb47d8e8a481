package main

import (
	"context"
	"sync"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/videoshard/videoshard/proto"
)

// Health poisoning (issue 8): CheckHealth calls whose deadlines are too
// short for the dependency check (four ffmpeg runs) must not make the
// worker unhealthy, neither in CheckHealth nor in grpc.health.v1. The
// attack lasts three health TTLs, so the cached check expires under it
// at least twice: each time, the next call is an attacker's.
func TestE2EHealthNotPoisonedByShortDeadlines(t *testing.T) {
	const ttl = time.Second
	w := startWorker(t, "", "encoder: ffmpeg\nhealth: {ttl: "+ttl.String()+"}\n")
	w.WaitHealthy()
	ctx := ctxT(t)

	// Every status grpc.health.v1 reports while the attack runs.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(w.Conn).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan healthpb.HealthCheckResponse_ServingStatus, 1024)
	go func() {
		defer close(seen)
		for {
			resp, err := watch.Recv()
			if err != nil {
				return
			}
			seen <- resp.GetStatus()
		}
	}()

	deadlines := []time.Duration{time.Millisecond, 5 * time.Millisecond, 30 * time.Millisecond}
	for start := time.Now(); time.Since(start) < 3*ttl; {
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, deadlines[i%len(deadlines)])
				defer cancel()
				// Most fail DeadlineExceeded: that is the attack.
				_, _ = w.Client.CheckHealth(cctx, &pb.HealthCheckRequest{MasterId: "attacker"})
			})
		}
		wg.Wait()
		h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{MasterId: "honest"})
		if err != nil || !h.GetIsHealthy() {
			t.Fatalf("after calls with short deadlines, CheckHealth = %v, %v\n%s", h, err, w.Logs)
		}
	}
	if st := healthStatus(t, ctx, w); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("grpc.health.v1 says %v after the attack, want SERVING\n%s", st, w.Logs)
	}
	stopWatch()
	for st := range seen {
		if st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("grpc.health.v1 turned %v during the attack", st)
		}
	}
}
