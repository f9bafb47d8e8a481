package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

// Two real workers: one replicates the other's chunk; the copy survives a
// restart and downloads verified.
func TestE2EReplicate(t *testing.T) {
	ctx := ctxT(t)
	src := startWorker(t, "", "encoder: simulated\nlabels: {zone: a, host: h1}\n")
	root := filepath.Join(t.TempDir(), "store")
	dst := startWorker(t, root, "encoder: simulated\n")
	data := randomBytes(3<<20, 7)
	if _, err := upload(ctx, src.Client, &pb.UploadHeader{VideoId: "v", ChunkIndex: 2, TotalSize: int64(len(data))}, data, 1<<20); err != nil {
		t.Fatal(err)
	}
	h, err := src.Client.CheckHealth(ctx, &pb.HealthCheckRequest{})
	if err != nil || h.GetLabels()["zone"] != "a" || h.GetLabels()["host"] != "h1" {
		t.Fatalf("source's labels: %v, %v", h.GetLabels(), err)
	}
	req := &pb.ReplicateShardRequest{SourceWorker: src.Addr, VideoId: "v", ChunkIndex: 2}
	resp, err := dst.Client.ReplicateShard(ctx, req)
	if err != nil || resp.GetAlreadyStored() {
		t.Fatalf("ReplicateShard: %v, %v", resp, err)
	}
	want, err := src.Client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "v"})
	if err != nil {
		t.Fatal(err)
	}

	dst.Stop()
	dst = startWorker(t, root, "encoder: simulated\n")
	got, err := dst.Client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "v"})
	if err != nil {
		t.Fatal(err)
	}
	m, w := got.GetChunksMetadata()[0], proto.Clone(want.GetChunksMetadata()[0]).(*pb.ChunkMetadata)
	if m.GetReplicatedFrom() != src.Addr {
		t.Fatalf("after a restart, replicated_from %q, want %q", m.GetReplicatedFrom(), src.Addr)
	}
	w.WorkerId, w.ShardLocation, w.ReplicatedFrom = m.GetWorkerId(), m.GetShardLocation(), m.GetReplicatedFrom()
	if !proto.Equal(m, w) {
		t.Fatalf("the copy after a restart\n%v\nthe source's\n%v", m, w)
	}
	c, err := client.Dial(ctx, dst.Addr, client.DialOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var shard bytes.Buffer
	if _, _, err := c.DownloadShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: proto.Int32(2)}, &shard,
		client.ShardWant{Checksum: w.GetChecksumSha256(), Size: w.GetEncodedSize()}); err != nil {
		t.Fatalf("DownloadShard of the copy: %v", err)
	}
	if resp, err := dst.Client.ReplicateShard(ctx, req); err != nil || !resp.GetAlreadyStored() {
		t.Fatalf("ReplicateShard after a restart: %v, %v; want already_stored", resp, err)
	}
}

// A target killed (SIGKILL) while it copies from a source that stalls
// half-way lists no partial copy once restarted, and keeps no file of it.
func TestE2EReplicateKilledMidCopy(t *testing.T) {
	ctx := ctxT(t)
	const size = 8 << 20
	half := make(chan struct{})
	gs := grpc.NewServer()
	pb.RegisterVideoProcessingServiceServer(gs, &stallingSource{size: size, half: half})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	defer gs.Stop()

	root := filepath.Join(t.TempDir(), "store")
	dst := startWorker(t, root, "encoder: simulated\npeer: {idle_timeout: 1m}\n")
	done := make(chan error, 1)
	go func() {
		_, err := dst.Client.ReplicateShard(ctx, &pb.ReplicateShardRequest{SourceWorker: lis.Addr().String(), VideoId: "v", ChunkIndex: 1})
		done <- err
	}()
	<-half
	// The half sent is in the target's pending file.
	waitFor(t, func() bool {
		names, _ := os.ReadDir(filepath.Join(root, ".tmp"))
		for _, n := range names {
			if fi, err := n.Info(); err == nil && fi.Size() >= size/2 {
				return true
			}
		}
		return false
	})
	dst.Kill()
	if err := <-done; status.Code(err) != codes.Unavailable {
		t.Fatalf("ReplicateShard to a killed worker: %v", err)
	}

	dst = startWorker(t, root, "encoder: simulated\n")
	list, err := dst.Client.ListShards(ctx, &pb.ListShardsRequest{})
	if err != nil || len(list.GetVideos()) != 0 {
		t.Fatalf("after the crash the target lists %v, %v", list.GetVideos(), err)
	}
	for _, dir := range []string{".tmp", "v", "metadata"} {
		names, _ := os.ReadDir(filepath.Join(root, dir))
		var left []string
		for _, n := range names {
			left = append(left, n.Name())
		}
		if len(left) > 0 {
			t.Fatalf("after the crash %s holds %s", dir, strings.Join(left, ", "))
		}
	}
}

// stallingSource sends the metadata of a shard of size bytes, then half
// of them, closes half and sends nothing more.
type stallingSource struct {
	pb.UnimplementedVideoProcessingServiceServer
	size int
	half chan struct{}
}

func (s *stallingSource) DownloadShard(_ *pb.GetShardRequest, stream pb.VideoProcessingService_DownloadShardServer) error {
	data := randomBytes(s.size, 1)
	meta := &pb.ChunkMetadata{VideoId: "v", ChunkIndex: 1, EncodedSize: int64(s.size), ChecksumSha256: sha(data),
		Timestamp: "2024-01-02T03:04:05.000006Z", Encoder: "simulated"}
	if err := stream.Send(&pb.DownloadShardResponse{Metadata: meta}); err != nil {
		return err
	}
	for off := 0; off < s.size/2; off += 1 << 20 {
		if err := stream.Send(&pb.DownloadShardResponse{Data: data[off : off+1<<20]}); err != nil {
			return err
		}
	}
	close(s.half)
	<-stream.Context().Done()
	return context.Cause(stream.Context())
}
