package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/internal/storetest"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// dialServer serves register on a bufconn listener and dials it.
func dialServer(t *testing.T, register func(*grpc.Server)) *client.Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	c, err := client.Dial(t.Context(), "passthrough:///worker", client.DialOptions{
		Insecure: true,
		GRPCOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// List pages through a worker's listing and gives it back whole: every
// chunk once, each video once, sorted, though the worker's own message
// limit would not let it send the listing in one piece.
func TestList_PagesThroughTheWorker(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	layout := storetest.Layout{Videos: 7, ChunksPerVideo: 450} // 3150 chunks, about 500 KB
	if _, err := storetest.Write(root, layout); err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(storage.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.NewSimulated(encode.SimulatedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcapi.NewServer(store, enc, grpcapi.Config{WorkerID: "w", MaxMessageBytes: 256 << 10})
	c := dialServer(t, srv.Register)

	resp, err := c.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetVideos()) != layout.Videos || resp.GetNextPageToken() != "" || resp.GetMessage() != "7 videos, 3150 chunks" {
		t.Fatalf("%d videos, next page %q, message %q", len(resp.GetVideos()), resp.GetNextPageToken(), resp.GetMessage())
	}
	for v, info := range resp.GetVideos() {
		if info.GetVideoId() != storetest.VideoID(v) || len(info.GetChunks()) != layout.ChunksPerVideo {
			t.Fatalf("video %d: %s with %d chunks", v, info.GetVideoId(), len(info.GetChunks()))
		}
		for i, ch := range info.GetChunks() {
			if ch.GetChunkIndex() != int32(i) {
				t.Fatalf("%s lists chunk %d at %d", info.GetVideoId(), ch.GetChunkIndex(), i)
			}
		}
	}
	one, err := c.List(t.Context(), storetest.VideoID(3))
	if err != nil || len(one.GetVideos()) != 1 || len(one.GetVideos()[0].GetChunks()) != layout.ChunksPerVideo {
		t.Fatalf("one video: %v", err)
	}
}

// loopingWorker names a next page forever.
type loopingWorker struct {
	pb.UnimplementedVideoProcessingServiceServer
	empty     bool // pages without chunks; else the same token again
	alternate bool // tokens A, B, A, B...
	calls     int
}

func (w *loopingWorker) ListShards(_ context.Context, req *pb.ListShardsRequest) (*pb.ListShardsResponse, error) {
	w.calls++
	resp := &pb.ListShardsResponse{Success: true, NextPageToken: "same"}
	if w.empty {
		resp.NextPageToken = fmt.Sprint("page", w.calls)
		return resp, nil
	}
	if w.alternate {
		resp.NextPageToken = fmt.Sprint("page", w.calls%2)
	}
	resp.Videos = []*pb.VideoInfo{{VideoId: "v", Chunks: []*pb.ChunkInfo{{ChunkIndex: 1}}}}
	return resp, nil
}

// A worker whose pages do not move on cannot keep List going.
func TestList_PagesThatDoNotMoveOn(t *testing.T) {
	for _, w := range []*loopingWorker{{}, {empty: true}, {alternate: true}} {
		c := dialServer(t, func(s *grpc.Server) { pb.RegisterVideoProcessingServiceServer(s, w) })
		if _, err := c.List(t.Context(), ""); !errors.Is(err, client.ErrProtocol) || w.calls > 3 {
			t.Fatalf("%+v: List = %v after %d calls; want ErrProtocol at once", w, err, w.calls)
		}
	}
}
