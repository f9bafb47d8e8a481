package storage

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestIndex_MatchesModel puts and drops random chunks and checks after
// each step that the index's order, and a page from any position, is what
// sorting a plain set gives.
func TestIndex_MatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	videos := []string{"a", "a-b", "b", "b0", "c"}
	model := map[ChunkRef]bool{}
	x := newIndex()
	sorted := func() []ChunkRef {
		out := make([]ChunkRef, 0, len(model))
		for r := range model {
			out = append(out, r)
		}
		slices.SortFunc(out, func(a, b ChunkRef) int {
			return cmp.Or(cmp.Compare(a.VideoID, b.VideoID), cmp.Compare(a.ChunkIndex, b.ChunkIndex))
		})
		return out
	}
	flat := func(vs []Video) []ChunkRef {
		var out []ChunkRef
		for _, v := range vs {
			for _, m := range v.Chunks {
				out = append(out, ChunkRef{v.ID, m.ChunkIndex})
			}
		}
		return out
	}
	for step := range 2000 {
		r := ChunkRef{videos[rng.IntN(len(videos))], rng.IntN(12)}
		if rng.IntN(3) == 0 {
			x.drop(r.VideoID, r.ChunkIndex)
			delete(model, r)
		} else {
			x.put(Metadata{VideoID: r.VideoID, ChunkIndex: r.ChunkIndex})
			model[r] = true
		}
		want := sorted()
		all, more := x.page("", nil, 0, false, nil)
		if got := flat(all); more || !slices.Equal(got, want) {
			t.Fatalf("step %d: listing %v more=%v, want %v", step, got, more, want)
		}
		if len(x.ids) != len(x.videos) {
			t.Fatalf("step %d: %d ids for %d videos", step, len(x.ids), len(x.videos))
		}
		// A page after a random position, listed or not.
		after := ChunkRef{videos[rng.IntN(len(videos))], rng.IntN(12)}
		limit := rng.IntN(4)
		i, _ := slices.BinarySearchFunc(want, after, func(a, b ChunkRef) int {
			return cmp.Or(cmp.Compare(a.VideoID, b.VideoID), cmp.Compare(a.ChunkIndex, b.ChunkIndex))
		})
		if i < len(want) && want[i] == after {
			i++
		}
		rest := want[i:]
		wantPage, wantMore := rest, false
		if limit > 0 && len(rest) > limit {
			wantPage, wantMore = rest[:limit], true
		}
		page, more := x.page("", &after, limit, false, nil)
		if got := flat(page); more != wantMore || !slices.Equal(got, wantPage) {
			t.Fatalf("step %d: page after %v limit %d = %v more=%v, want %v more=%v", step, after, limit, got, more, wantPage, wantMore)
		}
	}
	// buildIndex orders what it is given as put does.
	metas := map[chunkKey]Metadata{}
	for r := range model {
		metas[chunkKey{r.VideoID, r.ChunkIndex}] = Metadata{VideoID: r.VideoID, ChunkIndex: r.ChunkIndex}
	}
	built, _ := buildIndex(metas).page("", nil, 0, false, nil)
	if got := flat(built); !slices.Equal(got, sorted()) {
		t.Fatalf("buildIndex listing %v, want %v", got, sorted())
	}
}
