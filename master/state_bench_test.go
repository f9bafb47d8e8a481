package master

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/fsutil"
)

// rewriteState is the Save this package had before the journal: the whole
// state, indented, written atomically after every change. It is the
// benchmark's reference, and writes the old format for
// TestLoadState_OldFormat. It returns the bytes written.
func rewriteState(s *JobState, dir string) (int, error) {
	path, err := StatePath(dir, s.VideoID)
	if err != nil {
		return 0, err
	}
	if s.Version == 0 {
		s.Version = StateVersion
	}
	if err := s.check(); err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.UpdatedAt = now
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return 0, err
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	return len(data), fsutil.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// BenchmarkStateSave measures one Record and Save of a job's chunk map, every
// chunk done, at 7, 1,800 and 7,200 chunks: the journal against the
// whole-file rewrite it replaced (rewriteState), side by side. Run it with
// -count so the pairs interleave. Each journal run starts with a
// compaction, whose cost it spreads over the run's saves: a run shorter
// than a cycle (about as many saves as chunks, and at least the ~140 that
// fill minJournalBytes) overstates the amortised cost, one of several
// cycles measures it.
//
// Metrics per op:
//
//	ns/op      one Record+Save, fsyncs included (snapshots spread over the saves)
//	B/save     bytes written to the state files per save, snapshots included
//	snapshots  the journal's: how many snapshots it wrote during the run (total)
//
// Run with: go test -run '^$' -bench BenchmarkStateSave -benchtime 3s -count 5 ./master/
func BenchmarkStateSave(b *testing.B) {
	for _, n := range []int{7, 1800, 7200} {
		for _, impl := range []string{"journal", "rewrite"} {
			b.Run(fmt.Sprintf("chunks=%d/%s", n, impl), func(b *testing.B) {
				dir := b.TempDir()
				s := splitJobState(n, 1)
				for i := range n {
					s.Record(result(i, 0))
				}
				// save saves s and returns the bytes it wrote.
				save := func() (int64, error) {
					n, err := rewriteState(s, dir)
					return int64(n), err
				}
				if impl == "journal" {
					save = func() (int64, error) {
						gen, journal := s.saved.gen, s.saved.journalBytes
						if err := s.Save(dir); err != nil {
							return 0, err
						}
						if s.saved.gen != gen {
							return s.saved.snapshotBytes, nil
						}
						return s.saved.journalBytes - journal, nil
					}
				}
				if _, err := save(); err != nil {
					b.Fatal(err)
				}
				// Start the journal's run at a compaction: a run shorter than
				// a cycle then overstates its cost rather than leaving out
				// the snapshot it owes.
				s.saved.journalBytes = s.saved.snapshotBytes
				gen := s.saved.gen
				var written int64
				snapshots, k := 0, 0
				for b.Loop() {
					k++
					s.Record(result(k%n, k))
					w, err := save()
					if err != nil {
						b.Fatal(err)
					}
					written += w
					if s.saved.gen != gen {
						snapshots, gen = snapshots+1, s.saved.gen
					}
				}
				b.ReportMetric(float64(written)/float64(b.N), "B/save")
				if impl == "journal" {
					b.ReportMetric(float64(snapshots), "snapshots")
				}
			})
		}
	}
}
