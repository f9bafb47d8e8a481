package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/storetest"
	pb "github.com/videoshard/videoshard/proto"
)

// listRefs flattens a ListShards response to "video#index", failing on a
// video listed twice in one response.
func listRefs(t *testing.T, resp *pb.ListShardsResponse) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, v := range resp.GetVideos() {
		if seen[v.GetVideoId()] {
			t.Fatalf("video %s listed twice in one response", v.GetVideoId())
		}
		seen[v.GetVideoId()] = true
		for _, c := range v.GetChunks() {
			out = append(out, fmt.Sprintf("%s#%d", v.GetVideoId(), c.GetChunkIndex()))
		}
	}
	return out
}

// TestE2EListShardsPages lists a store of many chunks through the real
// worker page by page, with chunks uploaded between pages (ahead of the
// position, and behind it), as a client that does not page, and with a
// forged page token.
func TestE2EListShardsPages(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	layout := storetest.Layout{Videos: 12, ChunksPerVideo: 100}
	if _, err := storetest.Write(root, layout); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, root, "encoder: simulated\nworker_id: list-1\n")
	ctx := ctxT(t)
	var stored []string
	for v := range layout.Videos {
		for c := range layout.ChunksPerVideo {
			stored = append(stored, fmt.Sprintf("%s#%d", storetest.VideoID(v), c))
		}
	}

	// A client that does not page (the seed's tools): everything, sorted,
	// in one response with no next page.
	all, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := listRefs(t, all); !slices.Equal(got, stored) || all.GetNextPageToken() != "" {
		t.Fatalf("unpaged listing: %d chunks, next_page_token %q; want the %d stored and none",
			len(got), all.GetNextPageToken(), len(stored))
	}
	for _, v := range all.GetVideos() {
		for _, c := range v.GetChunks() {
			if want := filepath.Join(w.Root, v.GetVideoId(), fmt.Sprintf("chunk_%d.shard", c.GetChunkIndex())); c.GetShardLocation() != want || c.GetSizeBytes() != 64 {
				t.Fatalf("chunk info %v, want %s of 64 bytes", c, want)
			}
		}
	}

	// Pages of 70: videos cut across pages. After the second page, one
	// chunk is uploaded behind the position and one ahead.
	ahead := storetest.VideoID(layout.Videos-1) + "x" // sorts after every stored video
	req := &pb.ListShardsRequest{PageSize: 70}
	var got []string
	pages := 0
	for {
		resp, err := w.Client.ListShards(ctx, req)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		refs := listRefs(t, resp)
		if len(refs) > 70 || resp.GetNextPageToken() != "" && len(refs) != 70 {
			t.Fatalf("page %d holds %d chunks (next %q)", pages, len(refs), resp.GetNextPageToken())
		}
		got = append(got, refs...)
		pages++
		if pages == 2 {
			for _, video := range []string{"a-behind", ahead} {
				if _, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: video, ChunkIndex: 3, ChunkData: randomBytes(1000, 7)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if want := append(slices.Clone(stored), ahead+"#3"); !slices.Equal(got, want) {
		t.Fatalf("%d pages list %d chunks; want the %d stored and the one uploaded ahead", pages, len(got), len(want))
	}
	if want := (len(stored) + 1 + 69) / 70; pages != want {
		t.Fatalf("%d pages, want %d", pages, want)
	}

	// One video, paged.
	video := storetest.VideoID(5)
	var one []string
	req = &pb.ListShardsRequest{VideoId: video, PageSize: 30}
	for {
		resp, err := w.Client.ListShards(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		one = append(one, listRefs(t, resp)...)
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if !slices.Equal(one, stored[500:600]) {
		t.Fatalf("pages of %s list %v", video, one)
	}

	// A forged or foreign token is refused, naming neither it nor the store.
	first, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{VideoId: video, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*pb.ListShardsRequest{
		{PageSize: 10, PageToken: "Li4vLi4vZXRjL3Bhc3N3ZA"}, // "../../etc/passwd"
		{PageSize: 10, PageToken: first.GetNextPageToken()}, // made for one video
		{PageSize: -5},
	} {
		_, err := w.Client.ListShards(ctx, bad)
		if status.Code(err) != codes.InvalidArgument || strings.Contains(err.Error(), w.Root) ||
			bad.GetPageToken() != "" && strings.Contains(err.Error(), bad.GetPageToken()) {
			t.Fatalf("ListShards(%v) = %v; want InvalidArgument naming neither the token nor the store", bad, err)
		}
	}
	if _, err := w.Client.ListShards(context.Background(), &pb.ListShardsRequest{VideoId: video, PageToken: first.GetNextPageToken()}); err != nil {
		t.Fatalf("the rest of a video after its first page: %v", err)
	}
}
