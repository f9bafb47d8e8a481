package storage_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/storage"
)

// fuzzIDAllowed is the documented rule for video ids, written out
// independently of ValidateVideoID: 1 to MaxVideoIDLen bytes of
// A-Z a-z 0-9 . _ -, not starting with '.', not "metadata".
func fuzzIDAllowed(id string) bool {
	if len(id) < 1 || len(id) > storage.MaxVideoIDLen || id[0] == '.' || id == "metadata" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// FuzzValidateVideoID checks ValidateVideoID against the documented rule,
// and that every accepted id is one safe path element whose longest file
// name (a metadata file's temporary name) fits in 255 bytes.
func FuzzValidateVideoID(f *testing.F) {
	for _, s := range []string{
		"example_video.mp4", "a", "metadata", "Metadata", "metadata.", ".", "..", "...", ".tmp",
		"a/b", "../x", `a\b`, "a\x00b", "vidéo", "a b", "-", "_", "0", "x.",
		strings.Repeat("x", storage.MaxVideoIDLen), strings.Repeat("x", storage.MaxVideoIDLen+1),
	} {
		f.Add(s)
	}
	const root = "/srv/store"
	f.Fuzz(func(t *testing.T, id string) {
		err := storage.ValidateVideoID(id)
		if want := fuzzIDAllowed(id); (err == nil) != want {
			t.Fatalf("ValidateVideoID(%q) = %v; the documented rule says allowed=%v", id, err, want)
		}
		if err != nil {
			if !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("ValidateVideoID(%q) = %v, not wrapping ErrInvalid", id, err)
			}
			return
		}
		p := filepath.Join(root, id)
		if filepath.Dir(p) != root || filepath.Base(p) != id || !filepath.IsLocal(id) || filepath.Clean(id) != id {
			t.Fatalf("accepted id %q is not one path element: Join(%q, id) = %q", id, root, p)
		}
		// ".<id>_chunk_2147483647_metadata.json.tmp-" + 16 random characters.
		if n := len("." + id + "_chunk_2147483647_metadata.json" + ".tmp-" + strings.Repeat("r", 16)); n > 255 {
			t.Fatalf("accepted id %q makes a %d-byte file name", id, n)
		}
	})
}
