package storage_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// A chunk's quality is stored in its metadata file as valid JSON (null for
// an infinite PSNR), left out when not measured, and read back alike when
// the store is opened again.
func TestCommit_Quality(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name    string
		quality *storage.Quality
		json    string // the "quality" value in the file; "" for no key
	}{
		{name: "not measured"},
		{
			name:    "lossy",
			quality: &storage.Quality{Frames: 50, PSNRMin: 38.25, PSNRMean: 41.5, SSIMMin: 0.97, SSIMMean: 0.985},
			json:    `{"frames":50,"psnr_min":38.25,"psnr_mean":41.5,"ssim_min":0.97,"ssim_mean":0.985}`,
		},
		{
			name:    "some pictures identical",
			quality: &storage.Quality{Frames: 2, PSNRMin: 30, PSNRMean: 33.01, SSIMMin: 0.8, SSIMMean: 0.9},
			json:    `{"frames":2,"psnr_min":30,"psnr_mean":33.01,"ssim_min":0.8,"ssim_mean":0.9}`,
		},
		{
			name:    "identical",
			quality: &storage.Quality{Frames: 25, PSNRMin: inf, PSNRMean: inf, SSIMMin: 1, SSIMMean: 1},
			json:    `{"frames":25,"psnr_min":null,"psnr_mean":null,"ssim_min":1,"ssim_mean":1}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			s, _ := openStore(t, root, nil)
			p, err := s.Create("v", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Abort()
			if _, err := p.Write([]byte("shard")); err != nil {
				t.Fatal(err)
			}
			var in *storage.Quality
			if tt.quality != nil {
				q := *tt.quality
				in = &q
			}
			m, err := p.Commit(storage.Metadata{Encoder: "ffmpeg", Quality: in})
			if err != nil {
				t.Fatal(err)
			}
			if in != nil {
				in.Frames = -1 // the store keeps its own copy
			}
			raw, err := os.ReadFile(filepath.Join(root, "metadata", "v_chunk_0_metadata.json"))
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				t.Fatalf("metadata file is not JSON: %v\n%s", err, raw)
			}
			got, ok := fields["quality"]
			switch {
			case tt.json == "" && ok:
				t.Fatalf("quality = %s, want no key", got)
			case tt.json != "" && !jsonEqual(t, got, tt.json):
				t.Fatalf("quality = %s, want %s", got, tt.json)
			}

			s2, _ := openStore(t, root, nil)
			for name, meta := range map[string]storage.Metadata{"Commit": m, "Lookup after reopen": lookup(t, s2, "v", 0)} {
				if (meta.Quality == nil) != (tt.quality == nil) || meta.Quality != nil && *meta.Quality != *tt.quality {
					t.Errorf("%s: Quality = %v, want %v", name, meta.Quality, tt.quality)
				}
			}
			if tt.quality != nil {
				mine := lookup(t, s2, "v", 0)
				mine.Quality.Frames = 7
				if again := lookup(t, s2, "v", 0); again.Quality.Frames != tt.quality.Frames {
					t.Errorf("index changed through a returned Quality: %+v", *again.Quality)
				}
			}
		})
	}
}

func lookup(t *testing.T, s *storage.Store, video string, chunk int) storage.Metadata {
	t.Helper()
	m, err := s.Lookup(video, chunk)
	if err != nil {
		t.Fatalf("Lookup(%q, %d): %v", video, chunk, err)
	}
	return m
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, a json.RawMessage, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
