package grpcapi

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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
