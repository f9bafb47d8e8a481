package master

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// silentWorker never answers PinVideo.
type silentWorker struct {
	pb.UnimplementedVideoProcessingServiceServer
}

func (silentWorker) PinVideo(ctx context.Context, _ *pb.PinVideoRequest) (*pb.PinVideoResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestForEachWorker_Bounded: a worker that never answers is given up after
// the call's timeout, not waited for.
func TestForEachWorker_Bounded(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterVideoProcessingServiceServer(gs, silentWorker{})
	go gs.Serve(lis)
	defer gs.Stop()
	c, err := client.Dial(context.Background(), lis.Addr().String(), client.DialOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	errs := forEachWorker(context.Background(), map[string]*client.Client{"silent": c}, 200*time.Millisecond,
		func(ctx context.Context, c *client.Client) error { return c.Pin(ctx, "v") })
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a silent worker held the calls %v", took)
	}
	if err := errs["silent"]; err == nil || !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("the silent worker's error: %v, want a deadline", err)
	}
}
