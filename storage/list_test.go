package storage_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// listFixture is the store the paging tests list: chunk indexes with gaps,
// and video ids whose byte order is not their length order.
var listFixture = map[string][]int{
	"a":     {0, 1, 5},
	"a-b":   {3},
	"b":     {0, 10, 2147483647},
	"c.mp4": {7},
}

// fixtureOrder is listFixture as List orders it.
var fixtureOrder = []string{"a/0", "a/1", "a/5", "a-b/3", "b/0", "b/10", "b/2147483647", "c.mp4/7"}

func newListStore(t *testing.T) *storage.Store {
	t.Helper()
	s := newStore(t)
	for v, chunks := range listFixture {
		for _, n := range chunks {
			commit(t, s, v, n, payload(byte(n), 8))
		}
	}
	return s
}

// refs flattens videos to "video/index", checking each chunk belongs to
// its video.
func refs(t *testing.T, videos []storage.Video) []string {
	t.Helper()
	var out []string
	for _, v := range videos {
		if len(v.Chunks) == 0 {
			t.Errorf("video %s listed without chunks", v.ID)
		}
		for _, c := range v.Chunks {
			if c.VideoID != v.ID {
				t.Errorf("video %s lists a chunk of %s", v.ID, c.VideoID)
			}
			out = append(out, fmt.Sprintf("%s/%d", v.ID, c.ChunkIndex))
		}
	}
	return out
}

// pageAll lists opts's listing page by page, checking each page's size and
// More, and returns the chunks in order and the number of pages.
func pageAll(t *testing.T, s *storage.Store, opts storage.PageOptions) ([]string, int) {
	t.Helper()
	var all []string
	for pages := 1; ; pages++ {
		if pages > 100 {
			t.Fatalf("more than 100 pages: %v", all)
		}
		p, err := s.ListPage(opts)
		if err != nil {
			t.Fatalf("ListPage(%+v): %v", opts, err)
		}
		got := refs(t, p.Videos)
		if opts.Limit > 0 && len(got) > opts.Limit {
			t.Fatalf("page of limit %d holds %d chunks: %v", opts.Limit, len(got), got)
		}
		if p.More && opts.Limit > 0 && len(got) != opts.Limit {
			t.Fatalf("page with More holds %d chunks, not the limit %d", len(got), opts.Limit)
		}
		all = append(all, got...)
		if !p.More {
			return all, pages
		}
		last, ok := p.Last()
		if !ok {
			t.Fatal("an empty page says More")
		}
		opts.After = &last
	}
}

func TestListPage_Sizes(t *testing.T) {
	s := newListStore(t)
	n := len(fixtureOrder)
	for _, tc := range []struct {
		limit, pages int
	}{
		{0, 1},
		{1, n},
		{2, 4},
		{3, 3},
		{n - 1, 2},
		{n, 1}, // exactly the listing: no empty page after it
		{n + 1, 1},
		{math.MaxInt32, 1},
	} {
		t.Run(fmt.Sprint("limit=", tc.limit), func(t *testing.T) {
			got, pages := pageAll(t, s, storage.PageOptions{Limit: tc.limit})
			if !reflect.DeepEqual(got, fixtureOrder) {
				t.Fatalf("pages list %v, want %v", got, fixtureOrder)
			}
			if pages != tc.pages {
				t.Fatalf("%d pages, want %d", pages, tc.pages)
			}
		})
	}
	// List is the unlimited listing.
	videos, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(t, videos); !reflect.DeepEqual(got, fixtureOrder) {
		t.Fatalf("List = %v, want %v", got, fixtureOrder)
	}
}

func TestListPage_After(t *testing.T) {
	s := newListStore(t)
	for _, tc := range []struct {
		name  string
		video string
		after storage.ChunkRef
		limit int
		want  []string
		more  bool
	}{
		{"after a listed chunk", "", storage.ChunkRef{"a", 1}, 2, []string{"a/5", "a-b/3"}, true},
		{"after a chunk that is not there", "", storage.ChunkRef{"a", 2}, 1, []string{"a/5"}, true},
		{"after a video's last chunk", "", storage.ChunkRef{"a", 5}, 1, []string{"a-b/3"}, true},
		{"after a video that is not there", "", storage.ChunkRef{"a-a", 9}, 1, []string{"a-b/3"}, true},
		{"after the largest index", "", storage.ChunkRef{"b", math.MaxInt32}, 0, []string{"c.mp4/7"}, false},
		{"after the last chunk", "", storage.ChunkRef{"c.mp4", 7}, 5, nil, false},
		{"after everything", "", storage.ChunkRef{"zzz", 0}, 5, nil, false},
		{"after a chunk of the video", "b", storage.ChunkRef{"b", 0}, 1, []string{"b/10"}, true},
		{"one video to its end", "b", storage.ChunkRef{"b", 10}, 1, []string{"b/2147483647"}, false},
		{"after a video before it", "b", storage.ChunkRef{"a", 5}, 0, []string{"b/0", "b/10", "b/2147483647"}, false},
		{"after a video past it", "b", storage.ChunkRef{"c.mp4", 0}, 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := tc.after
			p, err := s.ListPage(storage.PageOptions{VideoID: tc.video, After: &after, Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if got := refs(t, p.Videos); !reflect.DeepEqual(got, tc.want) || p.More != tc.more {
				t.Fatalf("page = %v more=%v, want %v more=%v", got, p.More, tc.want, tc.more)
			}
		})
	}
}

func TestListPage_OneVideo(t *testing.T) {
	s := newListStore(t)
	for _, tc := range []struct {
		video string
		want  []string
	}{
		{"a", []string{"a/0", "a/1", "a/5"}},
		{"a-b", []string{"a-b/3"}},
		{"c.mp4", []string{"c.mp4/7"}},
		{"nothing-here", nil}, // an empty page, not an error
	} {
		for _, limit := range []int{0, 1, 2} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.video, limit), func(t *testing.T) {
				got, _ := pageAll(t, s, storage.PageOptions{VideoID: tc.video, Limit: limit})
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("pages list %v, want %v", got, tc.want)
				}
			})
		}
	}
}

func TestListPage_Invalid(t *testing.T) {
	s := newListStore(t)
	tooLarge := math.MaxInt32
	tooLarge++ // past the wire's int32 (and, where int has 32 bits, negative)
	for _, tc := range []struct {
		name string
		opts storage.PageOptions
		want string
	}{
		{"bad video", storage.PageOptions{VideoID: "../x"}, "video id"},
		{"reserved video", storage.PageOptions{VideoID: "metadata"}, "reserved"},
		{"negative limit", storage.PageOptions{Limit: -1}, "negative"},
		{"after a bad video", storage.PageOptions{After: &storage.ChunkRef{"../../etc", 0}}, "video id"},
		{"after an empty video", storage.PageOptions{After: &storage.ChunkRef{"", 0}}, "empty"},
		{"after a negative index", storage.PageOptions{After: &storage.ChunkRef{"a", -1}}, "chunk index"},
		{"after a too large index", storage.PageOptions{After: &storage.ChunkRef{"a", tooLarge}}, "chunk index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ListPage(tc.opts)
			if !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ListPage(%+v) = %v, %v; want ErrInvalid saying %q", tc.opts, p, err, tc.want)
			}
		})
	}
}

// TestListPage_StableAcrossChanges commits and quarantines chunks between
// pages: every chunk committed throughout is listed exactly once, a chunk
// committed behind the position is not listed, one ahead of it is, and a
// chunk removed before its page is not.
func TestListPage_StableAcrossChanges(t *testing.T) {
	s := newListStore(t)
	// Between pages, keyed by the number of pages listed so far.
	changes := map[int]func(){
		1: func() { // position: after a/1
			commit(t, s, "a", 0, payload(9, 9)) // replaced behind: not listed again
			commit(t, s, "a", 4, payload(4, 8)) // ahead, in the current video
			commit(t, s, "0first", 0, payload(1, 8))
			if err := s.Quarantine("a-b", 3, "test"); err != nil { // ahead, gone: a-b leaves the index
				t.Fatal(err)
			}
		},
		2: func() { // position: after a/5
			if err := s.Quarantine("a", 5, "test"); err != nil { // the position itself goes
				t.Fatal(err)
			}
			commit(t, s, "a", 6, payload(6, 8)) // right after the gone position
			commit(t, s, "a-c", 1, payload(1, 8))
		},
		3: func() { // position: after a-c/1
			if err := s.Quarantine("b", 10, "test"); err != nil {
				t.Fatal(err)
			}
			commit(t, s, "d", 0, payload(1, 8)) // a new last video
		},
	}
	var got []string
	opts := storage.PageOptions{Limit: 2}
	for pages := 0; ; pages++ {
		if change := changes[pages]; change != nil {
			change()
		}
		p, err := s.ListPage(opts)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, refs(t, p.Videos)...)
		if !p.More {
			break
		}
		last, _ := p.Last()
		opts.After = &last
	}
	want := []string{"a/0", "a/1", "a/4", "a/5", "a/6", "a-c/1", "b/0", "b/2147483647", "c.mp4/7", "d/0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pages list %v, want %v", got, want)
	}
}

// TestListPage_ReturnsCopies: a caller that changes a page changes nothing
// in the store.
func TestListPage_ReturnsCopies(t *testing.T) {
	s := newStore(t)
	m := commit(t, s, "a", 0, payload(1, 8))
	p, err := s.ListPage(storage.PageOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.Videos[0].Chunks[0].ChecksumSHA256 = "changed"
	p.Videos[0].Chunks[0].EncoderSettings = map[string]string{"x": "y"}
	again, err := s.Lookup("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if again.ChecksumSHA256 != m.ChecksumSHA256 || len(again.EncoderSettings) != len(m.EncoderSettings) {
		t.Fatalf("the store changed with the page: %+v", again)
	}
}

// A brief page lists the same chunks with only what a listing shows.
func TestListPage_Brief(t *testing.T) {
	s := newListStore(t)
	full, err := s.ListPage(storage.PageOptions{Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	brief, err := s.ListPage(storage.PageOptions{Limit: 4, Brief: true})
	if err != nil {
		t.Fatal(err)
	}
	if brief.More != full.More || len(brief.Videos) != len(full.Videos) {
		t.Fatalf("brief page %+v, full page %+v", brief, full)
	}
	for i, v := range full.Videos {
		for j, m := range v.Chunks {
			want := storage.Metadata{VideoID: m.VideoID, ChunkIndex: m.ChunkIndex, ShardLocation: m.ShardLocation,
				EncodedSize: m.EncodedSize, ChecksumSHA256: m.ChecksumSHA256}
			if got := brief.Videos[i].Chunks[j]; !reflect.DeepEqual(got, want) || m.Timestamp == "" {
				t.Fatalf("brief chunk %+v, want %+v", got, want)
			}
		}
	}
}
