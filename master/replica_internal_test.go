package master

import (
	"os"
	"path/filepath"
	"testing"
)

// A chunk map written before replication lists one worker per chunk: it
// loads as one copy each, and takes more through the journal.
func TestStateOldMapIsOneReplica(t *testing.T) {
	dir := t.TempDir()
	old := `{"version":1,"video_id":"v","source":"in.mp4","chunks":[` +
		`{"index":0,"frames":30,"done":true,"worker":"w1:1","location":"v/chunk_0.shard","checksum_sha256":"ab"},` +
		`{"index":1,"frames":30,"done":false}]}`
	if err := os.WriteFile(filepath.Join(dir, "v.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadState(dir, "v")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Chunks[0].Copies(); len(got) != 1 || got[0] != (Replica{Worker: "w1:1", Location: "v/chunk_0.shard"}) {
		t.Fatalf("old chunk's copies: %+v", got)
	}
	if got := s.Chunks[1].Copies(); got != nil {
		t.Fatalf("pending chunk's copies: %+v", got)
	}
	if got, want := s.replicasWanted(), 1; got != want {
		t.Fatalf("replicas wanted %d, want %d", got, want)
	}
	if err := s.Save(dir); err != nil { // a snapshot: the first Save of a loaded state
		t.Fatal(err)
	}
	s.addReplica(0, Replica{Worker: "w2:1", Location: "loc2", From: "w1:1"})
	s.addReplica(0, Replica{Worker: "w2:1", Location: "again"}) // once per worker
	if err := s.Save(dir); err != nil {                         // a journal line
		t.Fatal(err)
	}
	back, err := LoadState(dir, "v")
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Chunks[0].Copies(); len(got) != 2 || got[1].Worker != "w2:1" || got[1].Location != "loc2" || got[1].From != "w1:1" {
		t.Fatalf("copies after the journal: %+v", got)
	}
	back.dropReplica(0, "w1:1")
	if c := back.Chunks[0]; !c.Done || c.Worker != "w2:1" || c.Location != "loc2" || len(c.Copies()) != 1 {
		t.Fatalf("after dropping the first copy: %+v", c)
	}
	back.dropReplica(0, "w2:1")
	if c := back.Chunks[0]; c.Done || c.Copies() != nil {
		t.Fatalf("after dropping the last copy: %+v", c)
	}
}
