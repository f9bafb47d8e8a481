package grpcapi

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// put commits a chunk straight into the harness's store.
func put(t *testing.T, h *harness, video string, n int, data string, meta storage.Metadata) {
	t.Helper()
	p, err := h.store.Create(video, n)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if _, err := p.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(meta); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteShardAndVideo(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{})
	ctx := context.Background()
	put(t, h, "v", 0, "zero", storage.Metadata{})
	put(t, h, "v", 1, "one", storage.Metadata{})
	put(t, h, "w", 0, "w0", storage.Metadata{})

	resp, err := h.client.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: "v", ChunkIndex: 1})
	if err != nil || !resp.GetDeleted() || resp.GetFreedBytes() != 3 {
		t.Fatalf("DeleteShard = %v, %v; want deleted, 3 bytes freed", resp, err)
	}
	resp, err = h.client.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: "v", ChunkIndex: 1})
	if err != nil || !resp.GetSuccess() || resp.GetDeleted() {
		t.Fatalf("DeleteShard again = %v, %v; want success, deleted false", resp, err)
	}
	vresp, err := h.client.DeleteVideo(ctx, &pb.DeleteVideoRequest{VideoId: "v"})
	if err != nil || vresp.GetDeletedChunks() != 1 || vresp.GetFreedBytes() != 4 {
		t.Fatalf("DeleteVideo = %v, %v; want 1 chunk, 4 bytes", vresp, err)
	}
	if _, err := h.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: new(int32)}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetShard of a deleted chunk: %v, want NotFound", err)
	}
	if u := h.store.Usage(); u != (storage.Usage{Chunks: 1, Bytes: 2}) {
		t.Fatalf("Usage %+v, want w's chunk only", u)
	}
}

func TestDelete_Refused(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{})
	ctx := context.Background()
	put(t, h, "v", 0, "zero", storage.Metadata{})
	p, err := h.store.Create("v", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		want string
	}{
		{"being written", func() error {
			_, err := h.client.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: "v", ChunkIndex: 0})
			return err
		}, codes.FailedPrecondition, "being written"},
		{"its video being written", func() error {
			_, err := h.client.DeleteVideo(ctx, &pb.DeleteVideoRequest{VideoId: "v"})
			return err
		}, codes.FailedPrecondition, "being written"},
		{"bad video id", func() error {
			_, err := h.client.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: "../v", ChunkIndex: 0})
			return err
		}, codes.InvalidArgument, "video id"},
		{"negative index", func() error {
			_, err := h.client.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: "v", ChunkIndex: -1})
			return err
		}, codes.InvalidArgument, "chunk index"},
		{"empty video id", func() error {
			_, err := h.client.DeleteVideo(ctx, &pb.DeleteVideoRequest{})
			return err
		}, codes.InvalidArgument, "video id"},
		{"the metadata directory", func() error {
			_, err := h.client.DeleteVideo(ctx, &pb.DeleteVideoRequest{VideoId: "metadata"})
			return err
		}, codes.InvalidArgument, "video id"},
	} {
		err := tc.call()
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.code, tc.want)
		}
	}
	if _, err := h.store.Lookup("v", 0); err != nil {
		t.Fatalf("a refused delete removed the chunk: %v", err)
	}
}

// TestListShards_Filters pages through filtered listings of both indexes'
// store (the harness's is SQLite) and refuses a token with other filters.
func TestListShards_Filters(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{})
	ctx := context.Background()
	for n := range 12 {
		codec := []string{"libx264", "libvpx-vp9"}[n%2]
		enc := []string{"ffmpeg", "simulated", "ffmpeg"}[n%3]
		put(t, h, []string{"a", "b"}[n%2], n, "x", storage.Metadata{VideoCodec: codec, Encoder: enc})
	}
	all, err := h.store.ListPage(storage.PageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mid := all.Videos[0].Chunks[3].ProcessedAt().Unix() // of a/6
	for _, tc := range []struct {
		name string
		req  *pb.ListShardsRequest
		want string
	}{
		{"codec", &pb.ListShardsRequest{VideoCodec: "libvpx-vp9"}, "b/1 b/3 b/5 b/7 b/9 b/11"},
		{"encoder", &pb.ListShardsRequest{Encoder: "simulated"}, "a/4 a/10 b/1 b/7"},
		{"both", &pb.ListShardsRequest{VideoCodec: "libx264", Encoder: "ffmpeg"}, "a/0 a/2 a/6 a/8"},
		{"one video", &pb.ListShardsRequest{VideoId: "a", Encoder: "ffmpeg"}, "a/0 a/2 a/6 a/8"},
		{"none match", &pb.ListShardsRequest{Encoder: "x"}, ""},
		{"before", &pb.ListShardsRequest{ProcessedBefore: 1}, ""},
		{"after long ago", &pb.ListShardsRequest{VideoId: "a", ProcessedAfter: 1}, "a/0 a/2 a/4 a/6 a/8 a/10"},
		{"after the future", &pb.ListShardsRequest{ProcessedAfter: time.Now().Add(time.Hour).Unix()}, ""},
		{"before and after", &pb.ListShardsRequest{VideoId: "a", ProcessedAfter: mid - 1, ProcessedBefore: mid + 1},
			filterOn(all, mid)},
	} {
		for _, size := range []int32{0, 1, 3} {
			req := tc.req
			req.PageSize, req.PageToken = size, ""
			var got []string
			for _, resp := range listPages(t, h, req) {
				got = append(got, chunkRefs(t, resp.GetVideos())...)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("%s, page_size %d: %q, want %q", tc.name, size, g, tc.want)
			}
		}
	}
	first, err := h.client.ListShards(ctx, &pb.ListShardsRequest{PageSize: 1, Encoder: "ffmpeg"})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first filtered page: %v, %v", first, err)
	}
	for _, req := range []*pb.ListShardsRequest{
		{PageSize: 1, PageToken: first.GetNextPageToken()},
		{PageSize: 1, PageToken: first.GetNextPageToken(), Encoder: "simulated"},
		{PageSize: 1, PageToken: first.GetNextPageToken(), Encoder: "ffmpeg", VideoCodec: "libx264"},
	} {
		if _, err := h.client.ListShards(ctx, req); status.Code(err) != codes.InvalidArgument ||
			!strings.Contains(err.Error(), "other filters") {
			t.Errorf("token with other filters %v: %v, want InvalidArgument", req, err)
		}
	}
	for _, req := range []*pb.ListShardsRequest{{ProcessedAfter: -1}, {Encoder: "a\x00b"}, {VideoCodec: strings.Repeat("x", 300)}} {
		if _, err := h.client.ListShards(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListShards %v: %v, want InvalidArgument", req, err)
		}
	}
}

// filterOn lists video a's chunks committed strictly between the seconds
// at-1 and at+1, as a filter of processed_after at-1 and processed_before
// at+1 selects them.
func filterOn(p storage.Page, at int64) string {
	var out []string
	after, before := time.Unix(at-1, 0), time.Unix(at+1, 0)
	for _, m := range p.Videos[0].Chunks {
		// As the server bounds them: strictly between, to the nanosecond
		// (a chunk of the second before, past its start, is in too).
		if t := m.ProcessedAt(); t.After(after) && t.Before(before) {
			out = append(out, "a/"+strconv.Itoa(m.ChunkIndex))
		}
	}
	return strings.Join(out, " ")
}
