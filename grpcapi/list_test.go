package grpcapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/videoshard/videoshard/internal/storetest"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// newListHarness serves a store holding l's chunks (written straight in
// the on-disk layout, then opened) with cfg.
func newListHarness(t *testing.T, l storetest.Layout, cfg Config) *harness {
	t.Helper()
	root := filepath.Join(t.TempDir(), "store")
	if _, err := storetest.Write(root, l); err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(storage.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(store, &fakeEncoder{}, cfg)
	gs := grpc.NewServer(ServerOptions(srv.log)...)
	srv.Register(gs)
	conn := serveBufconn(t, gs, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	return &harness{srv: srv, store: store, client: pb.NewVideoProcessingServiceClient(conn)}
}

// chunkRefs flattens a listing to "video/index", failing on a video
// listed twice in one response or listed without chunks.
func chunkRefs(t *testing.T, videos []*pb.VideoInfo) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, v := range videos {
		if seen[v.GetVideoId()] || len(v.GetChunks()) == 0 {
			t.Fatalf("video %s listed twice in one response, or without chunks", v.GetVideoId())
		}
		seen[v.GetVideoId()] = true
		for _, c := range v.GetChunks() {
			out = append(out, fmt.Sprintf("%s/%d", v.GetVideoId(), c.GetChunkIndex()))
		}
	}
	return out
}

// layoutRefs is every chunk of l, in the listing's order (indexes sort as
// numbers: 2 before 10).
func layoutRefs(l storetest.Layout) []string {
	var out []string
	for v := range l.Videos {
		for c := range l.ChunksPerVideo {
			out = append(out, fmt.Sprintf("%s/%d", storetest.VideoID(v), c))
		}
	}
	return out
}

// listPages lists req's listing page by page and returns every page.
func listPages(t *testing.T, h *harness, req *pb.ListShardsRequest) []*pb.ListShardsResponse {
	t.Helper()
	req = proto.Clone(req).(*pb.ListShardsRequest)
	var pages []*pb.ListShardsResponse
	for {
		if len(pages) > 10000 {
			t.Fatal("more than 10000 pages")
		}
		resp, err := h.client.ListShards(context.Background(), req)
		if err != nil {
			t.Fatalf("ListShards(%v) after %d pages: %v", req, len(pages), err)
		}
		pages = append(pages, resp)
		if resp.GetNextPageToken() == "" {
			return pages
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func TestListShards_PageSizes(t *testing.T) {
	layout := storetest.Layout{Videos: 4, ChunksPerVideo: 13} // 52 chunks, every video cut somewhere
	h := newListHarness(t, layout, Config{WorkerID: "w"})
	all := layoutRefs(layout)
	for _, tc := range []struct {
		pageSize int32
		pages    int
	}{
		{1, 52},
		{2, 26},
		{5, 11},
		{13, 4}, // a page per video, exactly
		{51, 2},
		{52, 1}, // exactly the listing: no empty page after it
		{53, 1},
		{maxListPage, 1},
		{1 << 30, 1}, // clamped, still everything here
	} {
		t.Run(fmt.Sprint("page_size=", tc.pageSize), func(t *testing.T) {
			pages := listPages(t, h, &pb.ListShardsRequest{PageSize: tc.pageSize})
			var got []string
			for i, p := range pages {
				refs := chunkRefs(t, p.GetVideos())
				if len(refs) > int(tc.pageSize) {
					t.Fatalf("page %d holds %d chunks, more than page_size %d", i, len(refs), tc.pageSize)
				}
				if last := i == len(pages)-1; !last && len(refs) != int(tc.pageSize) {
					t.Fatalf("page %d of %d holds %d chunks, not page_size %d", i, len(pages), len(refs), tc.pageSize)
				}
				if !p.GetSuccess() || p.GetWorkerId() != "w" {
					t.Fatalf("page %d: success %v, worker %q", i, p.GetSuccess(), p.GetWorkerId())
				}
				got = append(got, refs...)
			}
			if !reflect.DeepEqual(got, all) {
				t.Fatalf("pages list %d chunks %v..., want the %d of the store", len(got), got[:min(len(got), 5)], len(all))
			}
			if len(pages) != tc.pages {
				t.Fatalf("%d pages, want %d", len(pages), tc.pages)
			}
		})
	}
}

// A page_size beyond the maximum is taken as the maximum.
func TestListShards_PageSizeClamped(t *testing.T) {
	layout := storetest.Layout{Videos: 51, ChunksPerVideo: 100} // 5100 chunks
	h := newListHarness(t, layout, Config{})
	pages := listPages(t, h, &pb.ListShardsRequest{PageSize: 1 << 30})
	if len(pages) != 2 {
		t.Fatalf("%d pages, want 2", len(pages))
	}
	first, second := chunkRefs(t, pages[0].GetVideos()), chunkRefs(t, pages[1].GetVideos())
	if len(first) != maxListPage || len(second) != 100 {
		t.Fatalf("pages of %d and %d chunks, want %d and 100", len(first), len(second), maxListPage)
	}
	if got, want := append(first, second...), layoutRefs(layout); !reflect.DeepEqual(got, want) {
		t.Fatal("the two pages are not the listing")
	}
}

// An older client sends neither page_size nor page_token: it gets the
// whole listing in one response, sorted, each video once, as before.
func TestListShards_OldClientGetsEverything(t *testing.T) {
	layout := storetest.Layout{Videos: 3, ChunksPerVideo: 12}
	h := newListHarness(t, layout, Config{})
	resp, err := h.client.ListShards(context.Background(), &pb.ListShardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := chunkRefs(t, resp.GetVideos()), layoutRefs(layout); !reflect.DeepEqual(got, want) {
		t.Fatalf("listing %v, want %v", got, want)
	}
	if resp.GetNextPageToken() != "" || resp.GetMessage() != "3 videos, 36 chunks" {
		t.Fatalf("next_page_token %q, message %q; want none and \"3 videos, 36 chunks\"", resp.GetNextPageToken(), resp.GetMessage())
	}
	one, err := h.client.ListShards(context.Background(), &pb.ListShardsRequest{VideoId: storetest.VideoID(1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := chunkRefs(t, one.GetVideos()); len(got) != 12 || got[0] != storetest.VideoID(1)+"/0" {
		t.Fatalf("listing of one video = %v", got)
	}
	// An unknown video lists as empty, paged or not.
	for _, size := range []int32{0, 10} {
		none, err := h.client.ListShards(context.Background(), &pb.ListShardsRequest{VideoId: "nothing", PageSize: size})
		if err != nil || len(none.GetVideos()) != 0 || none.GetNextPageToken() != "" {
			t.Fatalf("page_size %d: unknown video lists %v, %v", size, none, err)
		}
	}
}

// A listing that would not fit the worker's message limit is refused to a
// client that does not page (it would take a cut listing for all of it),
// saying to page; a paging client gets pages that fit, cut below
// page_size if need be.
func TestListShards_MessageLimit(t *testing.T) {
	layout := storetest.Layout{Videos: 10, ChunksPerVideo: 25} // 250 chunks, about 40 KB
	const limit = 8 << 10
	h := newListHarness(t, layout, Config{MaxMessageBytes: limit})
	for _, req := range []*pb.ListShardsRequest{
		{},
		{VideoId: ""},
	} {
		_, err := h.client.ListShards(context.Background(), req)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "send page_size") {
			t.Fatalf("an unpaged listing over the limit: %v; want ResourceExhausted saying to send page_size", err)
		}
	}
	// One video fits.
	if _, err := h.client.ListShards(context.Background(), &pb.ListShardsRequest{VideoId: storetest.VideoID(3)}); err != nil {
		t.Fatalf("one video's listing: %v", err)
	}
	pages := listPages(t, h, &pb.ListShardsRequest{PageSize: maxListPage})
	var got []string
	for i, p := range pages {
		size := proto.Size(p)
		if size > limit {
			t.Fatalf("page %d is %d bytes, over the %d-byte limit", i, size, limit)
		}
		if i < len(pages)-1 && size < limit-listHeadroom-300 {
			t.Fatalf("page %d is %d bytes, cut well before the %d-byte limit", i, size, limit)
		}
		got = append(got, chunkRefs(t, p.GetVideos())...)
	}
	if want := layoutRefs(layout); !reflect.DeepEqual(got, want) {
		t.Fatalf("%d pages list %d chunks, want the %d of the store", len(pages), len(got), len(want))
	}
	if len(pages) < 4 {
		t.Fatalf("%d pages: the limit did not cut them", len(pages))
	}
}

// listing.add counts the bytes the videos take exactly as protobuf
// encodes them, across video boundaries and length prefixes that grow.
func TestListing_SizeIsExact(t *testing.T) {
	l := &listing{budget: 1 << 30}
	for v := range 5 {
		id := strings.Repeat("v", 1+v*60) + fmt.Sprint(v)
		for c := range 40 * v {
			ci := &pb.ChunkInfo{ChunkIndex: int32(c), ShardLocation: "/s/" + id, SizeBytes: int64(c) << 20, ChecksumSha256: "ab"}
			if !l.add(id, ci) {
				t.Fatal("add refused under the budget")
			}
			if got := proto.Size(&pb.ListShardsResponse{Videos: l.videos}); got != l.bytes {
				t.Fatalf("video %d chunk %d: counted %d bytes, protobuf encodes %d", v, c, l.bytes, got)
			}
		}
	}
	l.budget = l.bytes
	if l.add("zzz", &pb.ChunkInfo{}) {
		t.Fatal("add went over the budget")
	}
}

func TestListShards_InvalidRequests(t *testing.T) {
	h := newListHarness(t, storetest.Layout{Videos: 2, ChunksPerVideo: 3}, Config{})
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	v0, v1 := storetest.VideoID(0), storetest.VideoID(1)
	notOurs := "not one this worker made"
	for _, tc := range []struct {
		name string
		req  *pb.ListShardsRequest
		want string
	}{
		{"negative page_size", &pb.ListShardsRequest{PageSize: -1}, "page_size -1 is negative"},
		{"bad video_id", &pb.ListShardsRequest{VideoId: "../..", PageSize: 1}, "video id"},
		{"not base64", &pb.ListShardsRequest{PageSize: 1, PageToken: "!!!"}, notOurs},
		{"padded base64", &pb.ListShardsRequest{PageSize: 1, PageToken: base64.URLEncoding.EncodeToString([]byte("1//" + v0 + "/10"))}, notOurs}, // ends in "=="
		{"garbage", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("hello")}, notOurs},
		{"another version", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("2//" + v0 + "/1")}, notOurs},
		{"too few parts", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1/" + v0 + "/1")}, notOurs},
		{"too many parts", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//" + v0 + "/1/2")}, notOurs},
		{"a path for a video", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//..%2F..%2Fetc/1")}, notOurs},
		{"an empty video", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1///1")}, notOurs},
		{"the metadata directory", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//metadata/1")}, notOurs},
		{"a hidden name", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//.tmp/1")}, notOurs},
		{"a negative index", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//" + v0 + "/-1")}, notOurs},
		{"a signed index", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//" + v0 + "/+1")}, notOurs},
		{"a leading zero", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//" + v0 + "/01")}, notOurs},
		{"an index past int32", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//" + v0 + "/2147483648")}, notOurs},
		{"no index", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1//" + v0 + "/")}, notOurs},
		{"too long", &pb.ListShardsRequest{PageSize: 1, PageToken: strings.Repeat("A", maxPageTokenLen+1)}, notOurs},
		{"a bad video it was made for", &pb.ListShardsRequest{PageSize: 1, PageToken: b64("1/a%b/" + v0 + "/1")}, notOurs},
		{"one video's token for every video", &pb.ListShardsRequest{PageSize: 1, PageToken: pageToken(v0, storage.Filter{}, storage.ChunkRef{VideoID: v0, ChunkIndex: 1})},
			`continues a listing of video "` + v0 + `", not of every video`},
		{"every video's token for one video", &pb.ListShardsRequest{VideoId: v0, PageSize: 1, PageToken: pageToken("", storage.Filter{}, storage.ChunkRef{VideoID: v0, ChunkIndex: 1})},
			`continues a listing of every video, not of video "` + v0 + `"`},
		{"another video's token", &pb.ListShardsRequest{VideoId: v1, PageSize: 1, PageToken: pageToken(v0, storage.Filter{}, storage.ChunkRef{VideoID: v0, ChunkIndex: 1})},
			"a page token goes with the video_id it was made for"},
		{"one video's token stopping in another", &pb.ListShardsRequest{VideoId: v0, PageSize: 1, PageToken: b64("1/" + v0 + "/" + v1 + "/0")}, notOurs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.client.ListShards(context.Background(), tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ListShards = %v, %v; want InvalidArgument saying %q", resp, err, tc.want)
			}
			if tok := tc.req.GetPageToken(); tok != "" && strings.Contains(err.Error(), tok) {
				t.Fatalf("the error echoes the token: %v", err)
			}
		})
	}
}

// A token the worker made works with any page_size, 0 included (the rest
// of the listing in one response), and a listing of one video pages too.
func TestListShards_TokenAcrossPageSizes(t *testing.T) {
	layout := storetest.Layout{Videos: 3, ChunksPerVideo: 4}
	h := newListHarness(t, layout, Config{})
	all := layoutRefs(layout)
	first, err := h.client.ListShards(context.Background(), &pb.ListShardsRequest{PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := h.client.ListShards(context.Background(), &pb.ListShardsRequest{PageToken: first.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if rest.GetNextPageToken() != "" {
		t.Fatal("page_size 0 left a next page")
	}
	if got := append(chunkRefs(t, first.GetVideos()), chunkRefs(t, rest.GetVideos())...); !reflect.DeepEqual(got, all) {
		t.Fatalf("a page and the rest list %v, want %v", got, all)
	}
	v := storetest.VideoID(2)
	var got []string
	for _, p := range listPages(t, h, &pb.ListShardsRequest{VideoId: v, PageSize: 3}) {
		got = append(got, chunkRefs(t, p.GetVideos())...)
	}
	if want := all[8:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("pages of one video list %v, want %v", got, want)
	}
}

// Chunks committed and removed between pages: nothing that stays is
// listed twice or skipped, what is added ahead of the position is listed,
// what is added behind it or removed before its page is not.
func TestListShards_StableAcrossChanges(t *testing.T) {
	layout := storetest.Layout{Videos: 3, ChunksPerVideo: 4}
	h := newListHarness(t, layout, Config{})
	v0, v1, v2 := storetest.VideoID(0), storetest.VideoID(1), storetest.VideoID(2)
	add := func(video string, n int) {
		t.Helper()
		p, err := h.store.Create(video, n)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Abort()
		if _, err := p.Write([]byte("new")); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Commit(storage.Metadata{Encoder: "simulated"}); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(video string, n int) {
		t.Helper()
		if err := h.store.Quarantine(video, n, "test"); err != nil {
			t.Fatal(err)
		}
	}
	changes := map[int]func(){
		1: func() { // listed so far: v0/0..2
			add(v0, 10)       // ahead in the current video
			add("a-first", 0) // behind: a new first video
			remove(v0, 3)     // ahead
			remove(v1, 0)     // ahead
		},
		2: func() { // listed so far: v0/0..2, v0/10, v1/1..2
			remove(v1, 2) // the position itself
			add(v1, 2)    // and back: it was listed already
			add(v1, 100)
			remove(v2, 3)
		},
		3: func() { // listed so far: ..., v1/3, v1/100, v2/0
			add(v2, 1) // replaced ahead: listed once, the new version
			add("zz-last", 7)
		},
	}
	req := &pb.ListShardsRequest{PageSize: 3}
	var got []string
	for pages := 0; ; pages++ {
		if change := changes[pages]; change != nil {
			change()
		}
		resp, err := h.client.ListShards(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, chunkRefs(t, resp.GetVideos())...)
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	want := []string{
		v0 + "/0", v0 + "/1", v0 + "/2",
		v0 + "/10", v1 + "/1", v1 + "/2",
		v1 + "/3", v1 + "/100", v2 + "/0",
		v2 + "/1", v2 + "/2", "zz-last/7",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pages list\n%v\nwant\n%v", got, want)
	}
}
