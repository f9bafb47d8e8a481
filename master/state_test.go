package master

// White-box: the tests reach the journal's lines, a Save's steps and what
// a JobState knows of its files.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/fsutil"
	"github.com/videoshard/videoshard/master/media"
	pb "github.com/videoshard/videoshard/proto"
)

func sampleJobState() *JobState {
	return &JobState{
		VideoID:        "clip.mp4",
		Source:         "/videos/clip.mp4",
		SourceSize:     123456,
		SourceModTime:  time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		SourceFrames:   300,
		SegmentSeconds: 2.5,
		Encoding:       map[string]string{"video_codec": "libx264", "crf": "23"},
		Output:         "/videos/clip.mkv",
		Chunks: []ChunkState{
			{Index: 0, Frames: 100, Size: 1000, Start: 0, Duration: 4.004},
			{Index: 1, Frames: 100, Size: 2000, Start: 4.004, Duration: 4.004},
			{Index: 2, Frames: 100, Size: 3000, Start: 8.008, Duration: 3.5},
		},
	}
}

// splitJobState is a state of n chunks as a split leaves it, their indexes
// 0, step, 2*step...: with step > 1 there is room to insert chunks.
func splitJobState(n, step int) *JobState {
	s := sampleJobState()
	s.Chunks = make([]ChunkState, n)
	for i := range s.Chunks {
		s.Chunks[i] = ChunkState{Index: i * step, FirstFrame: int64(i) * 250, Frames: 250, Size: 1_500_000 + int64(i),
			Start: float64(i) * 10.01, Duration: 10.01}
	}
	return s
}

// result is a done chunk's result, of attempt k.
func result(index, k int) ChunkResult {
	return ChunkResult{Index: index, Worker: fmt.Sprintf("10.0.0.%d:50051", k%8), Location: fmt.Sprintf("/srv/shards/clip.mp4/chunk_%d.shard", index),
		Checksum: fmt.Sprintf("%064x", index*1000+k), EncodedSize: 900_000 + int64(k), OriginalSize: 1_500_000,
		Encoder: pb.EncoderFFmpeg, VideoCodec: "h264", Attempts: 1 + k%3, MediaChecked: true}
}

// stateJSON is what a state says, without what it knows of its files.
func stateJSON(t testing.TB, s *JobState) string {
	t.Helper()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustLoad(t testing.TB, dir string) *JobState {
	t.Helper()
	s, err := LoadState(dir, "clip.mp4")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkLoads fails unless dir holds s.
func checkLoads(t testing.TB, dir string, s *JobState) {
	t.Helper()
	if got, want := stateJSON(t, mustLoad(t, dir)), stateJSON(t, s); got != want {
		t.Fatalf("loaded\n%s\nwant\n%s", got, want)
	}
}

func mustSave(t testing.TB, s *JobState, dir string) {
	t.Helper()
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// stateDirNames lists dir, to catch temporary files left behind.
func stateDirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

var stateFiles = []string{"clip.mp4.journal", "clip.mp4.json"}

func TestJobState_SaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // Save creates it
	s := sampleJobState()
	s.Record(ChunkResult{Index: 1, Worker: "w1:1", Location: "/s/clip.mp4/chunk_1.shard", Checksum: "abc",
		EncodedSize: 900, Encoder: "ffmpeg", VideoCodec: "h264", Attempts: 2, MediaChecked: true})
	mustSave(t, s, dir)
	if s.Version != StateVersion || s.CreatedAt.IsZero() || s.UpdatedAt.Before(s.CreatedAt) {
		t.Errorf("Save did not stamp version and times: %d %v %v", s.Version, s.CreatedAt, s.UpdatedAt)
	}
	checkLoads(t, dir, s)
	if names := stateDirNames(t, dir); !slices.Equal(names, stateFiles) {
		t.Errorf("directory holds %v", names)
	}

	created := s.CreatedAt
	time.Sleep(2 * time.Millisecond)
	s.Record(ChunkResult{Index: 0, Worker: "w2:2", Checksum: "def"})
	mustSave(t, s, dir)
	got := mustLoad(t, dir)
	if !got.CreatedAt.Equal(created) || !got.UpdatedAt.After(created) {
		t.Errorf("second save: created %v (want %v), updated %v", got.CreatedAt, created, got.UpdatedAt)
	}
	if p := got.Pending(); !slices.Equal(p, []int{2}) {
		t.Errorf("pending %v, want [2]", p)
	}
	checkLoads(t, dir, s)
}

func TestJobState_RecordPending(t *testing.T) {
	s := sampleJobState()
	if p := s.Pending(); !slices.Equal(p, []int{0, 1, 2}) {
		t.Fatalf("pending %v", p)
	}
	s.Record(ChunkResult{Index: 2, Worker: "w", Checksum: "x", OriginalSize: 3000})
	s.Record(ChunkResult{Index: 5, Worker: "w", Checksum: "y", OriginalSize: 77}) // not listed: added
	if p := s.Pending(); !slices.Equal(p, []int{0, 1}) {
		t.Errorf("pending %v, want [0 1]", p)
	}
	if len(s.Chunks) != 4 || s.Chunks[3].Index != 5 || !s.Chunks[3].Done || s.Chunks[3].Size != 77 {
		t.Errorf("chunks %+v", s.Chunks)
	}
	if c := s.Chunks[2]; !c.Done || c.Worker != "w" || c.Checksum != "x" || c.Frames != 100 || c.Size != 3000 {
		t.Errorf("chunk 2 %+v", c)
	}
}

// mutate makes one random change to s of the kinds a job makes, and says
// which.
func mutate(r *rand.Rand, s *JobState, k int) string {
	i := r.IntN(len(s.Chunks))
	switch op := r.IntN(20); {
	case op < 9:
		s.Record(result(s.Chunks[i].Index, k))
		return "record"
	case op < 12:
		s.forget(i)
		return "forget"
	case op < 14:
		c := s.Chunks[i]
		s.setSplit(media.Chunk{Index: c.Index, Size: c.Size + 1, TrimStart: int64(k % 5), Decoded: c.Frames + int64(k%5), Lossless: k%2 == 0})
		return "split"
	case op < 17:
		s.Chunks[i].Quality = &media.QualityStats{Frames: 250, MinPSNR: 30 + float64(k%10), MeanPSNR: 40, MinSSIM: 0.95, MeanSSIM: 0.99}
		if k%7 == 0 {
			s.Chunks[i].Quality.MinPSNR = math.Inf(1) // identical pictures: null in JSON
		}
		s.Chunks[i].QualityMode = VerifySample
		s.markChanged(i)
		return "quality"
	case op < 18:
		s.Output = fmt.Sprintf("/videos/clip-%d.mkv", k)
		return "job"
	case op < 19:
		s.Record(result(s.Chunks[len(s.Chunks)-1].Index+1+r.IntN(3), k))
		return "append"
	default:
		s.Record(result(s.Chunks[i].Index+1, k)) // a gap: inserted, or already there
		return "insert"
	}
}

// TestJobState_JournalRoundTrip: random changes, a Save after one to
// three of them: LoadState reads every saved state back, the saves append
// as a rule, and the journal never outgrows the snapshot.
func TestJobState_JournalRoundTrip(t *testing.T) {
	for _, n := range []int{1, 7, 60} {
		t.Run(fmt.Sprintf("chunks=%d", n), func(t *testing.T) {
			dir := t.TempDir()
			r := rand.New(rand.NewPCG(uint64(n), 9))
			s := splitJobState(n, 3)
			mustSave(t, s, dir)
			ops := map[string]int{}
			appends, snapshots := 0, 0
			for k := range 300 {
				for range 1 + r.IntN(3) {
					ops[mutate(r, s, k)]++
				}
				gen, seq := s.saved.gen, s.saved.seq
				mustSave(t, s, dir)
				switch {
				case s.saved.gen != gen:
					snapshots++
				case s.saved.seq == seq+1:
					appends++
				}
				if j := fileSize(t, journalPath(s.saved.path)); j > s.saved.journalLimit() {
					t.Fatalf("save %d: journal of %d bytes, snapshot of %d", k, j, s.saved.snapshotBytes)
				}
				checkLoads(t, dir, s)
			}
			t.Logf("%v; %d appends, %d snapshots", ops, appends, snapshots)
			if appends < 3*snapshots || snapshots == 0 {
				t.Errorf("%d appends, %d snapshots: want mostly appends, and some compaction", appends, snapshots)
			}
		})
	}
}

// TestJobState_SaveNothingChanged: a Save with nothing to say writes
// nothing and leaves UpdatedAt.
func TestJobState_SaveNothingChanged(t *testing.T) {
	dir := t.TempDir()
	s := sampleJobState()
	mustSave(t, s, dir)
	s.Record(result(1, 1))
	mustSave(t, s, dir)
	updated, size := s.UpdatedAt, fileSize(t, filepath.Join(dir, "clip.mp4.journal"))
	mustSave(t, s, dir)
	if fileSize(t, filepath.Join(dir, "clip.mp4.journal")) != size || !s.UpdatedAt.Equal(updated) {
		t.Errorf("a Save with nothing changed wrote")
	}
	checkLoads(t, dir, s)
}

// TestJobState_SnapshotWhenNotRecords: changes lines cannot say make the
// next Save a snapshot.
func TestJobState_SnapshotWhenNotRecords(t *testing.T) {
	for name, change := range map[string]func(t *testing.T, s *JobState){
		"chunk inserted": func(_ *testing.T, s *JobState) { s.Record(result(3, 1)) },
		"chunk removed":  func(_ *testing.T, s *JobState) { s.Chunks = s.Chunks[:len(s.Chunks)-1] },
		"chunks replaced": func(_ *testing.T, s *JobState) {
			s.Chunks = slices.Clone(s.Chunks)
			s.Chunks[0].Done = true // not marked: only a snapshot saves it
		},
		"chunk added unmarked": func(_ *testing.T, s *JobState) {
			s.Chunks = append(s.Chunks, ChunkState{Index: 100}) // within the capacity
		},
		"journal removed": func(t *testing.T, s *JobState) {
			if err := os.Remove(journalPath(s.saved.path)); err != nil {
				t.Fatal(err)
			}
			s.Record(result(0, 2))
		},
		"saved elsewhere": func(t *testing.T, s *JobState) {
			s.Record(result(0, 2))
			mustSave(t, s, t.TempDir())
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := splitJobState(5, 2)
			s.Chunks = slices.Grow(s.Chunks, 1)
			mustSave(t, s, dir)
			s.Record(result(2, 0))
			mustSave(t, s, dir)
			gen := s.saved.gen
			change(t, s)
			mustSave(t, s, dir)
			if s.saved.gen == gen {
				t.Errorf("no snapshot")
			}
			checkLoads(t, dir, s)
		})
	}
	t.Run("chunk appended", func(t *testing.T) {
		dir := t.TempDir()
		s := splitJobState(5, 2)
		s.Chunks = slices.Grow(s.Chunks, 1)
		mustSave(t, s, dir)
		gen := s.saved.gen
		s.Record(result(9, 0)) // past the last: a line adds it
		mustSave(t, s, dir)
		if s.saved.gen != gen || s.saved.seq != 1 {
			t.Errorf("a chunk added past the last made a snapshot")
		}
		checkLoads(t, dir, s)
	})
}

// TestJobState_HeaderInJournal: job-level changes go into the journal
// too, with or without a chunk.
func TestJobState_HeaderInJournal(t *testing.T) {
	dir := t.TempDir()
	s := splitJobState(10, 1)
	mustSave(t, s, dir)
	s.Output = "/videos/other.mkv"
	mustSave(t, s, dir)
	s.Encoding["preset"] = "slow"
	s.Record(result(2, 0))
	mustSave(t, s, dir)
	if s.saved.seq != 2 {
		t.Fatalf("%d saves appended, want 2", s.saved.seq)
	}
	checkLoads(t, dir, s)
	journal, err := os.ReadFile(filepath.Join(dir, "clip.mp4.journal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(bytes.TrimSuffix(journal, []byte("\n")), []byte("\n")) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("a journal line is not JSON: %v\n%s", err, line)
		}
		if job, ok := m["job"]; !ok || bytes.Contains(job, []byte(`"chunks"`)) {
			t.Errorf("a line without the job fields, or with the chunks in them:\n%s", line)
		}
	}
}

// TestJournalLine: a line is JSON, reads back, and a change to any of its
// bytes is caught.
func TestJournalLine(t *testing.T) {
	c := sampleJobState().Chunks[1]
	l := journalLine{Gen: 77, Seq: 3, Of: 2, UpdatedAt: time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC), Chunk: &c}
	line, err := appendLine(nil, &l)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(line) || bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("not one JSON line: %q", line)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	got, err := parseLine(line)
	if err != nil || got.Gen != 77 || got.Seq != 3 || got.lines() != 2 || !got.UpdatedAt.Equal(l.UpdatedAt) || !reflect.DeepEqual(*got.Chunk, c) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	for i := range line {
		damaged := bytes.Clone(line)
		damaged[i] ^= 0x04
		if _, err := parseLine(damaged); err == nil {
			t.Errorf("byte %d (%q) changed, the line still reads", i, line[i])
		}
	}
}

// journalLines reads the journal beside dir's snapshot, line by line,
// newlines kept.
func journalLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "clip.mp4.journal"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

func writeJournal(t *testing.T, dir string, lines ...[]byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "clip.mp4.journal"), bytes.Join(lines, nil), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadState_TornJournal: the journal cut at every byte of its last
// Save (one line, or several) loads as the state before that Save, or,
// whole, after it: never an error, never part of the Save.
func TestLoadState_TornJournal(t *testing.T) {
	for _, chunks := range [][]int{{1}, {0, 2}, {0, 1, 2}} {
		t.Run(fmt.Sprint(chunks), func(t *testing.T) {
			dir := t.TempDir()
			s := sampleJobState()
			mustSave(t, s, dir)
			s.Record(result(2, 0))
			mustSave(t, s, dir)
			before := stateJSON(t, s)
			cut := fileSize(t, filepath.Join(dir, "clip.mp4.journal"))
			for _, i := range chunks {
				s.Record(result(i, 1))
			}
			mustSave(t, s, dir)
			after := stateJSON(t, s)
			journal, err := os.ReadFile(filepath.Join(dir, "clip.mp4.journal"))
			if err != nil {
				t.Fatal(err)
			}
			for n := cut; n <= int64(len(journal)); n++ {
				writeJournal(t, dir, journal[:n])
				got, err := LoadState(dir, "clip.mp4")
				if err != nil {
					t.Fatalf("journal cut at %d of %d: %v", n, len(journal), err)
				}
				want := before
				if n == int64(len(journal)) {
					want = after
				}
				if g := stateJSON(t, got); g != want {
					t.Fatalf("journal cut at %d of %d: loaded\n%s\nwant\n%s", n, len(journal), g, want)
				}
			}
		})
	}
}

// TestLoadState_JournalDamage: damage before a complete Save, or a line
// that does not fit the map, is an error naming its line; damage in the
// last Save only is a crash, ignored.
func TestLoadState_JournalDamage(t *testing.T) {
	// Three Saves: line 1 (chunk 0), lines 2-3 (chunks 2, 4), line 4 (chunk 0).
	setup := func(t *testing.T) (dir string, s *JobState, lines [][]byte, states []string) {
		dir = t.TempDir()
		s = splitJobState(20, 2) // large enough a snapshot for the journal to stay
		mustSave(t, s, dir)
		states = append(states, stateJSON(t, s))
		for _, save := range [][]int{{0}, {2, 4}, {0}} {
			for _, i := range save {
				s.Record(result(i, len(states)))
			}
			mustSave(t, s, dir)
			states = append(states, stateJSON(t, s))
		}
		return dir, s, journalLines(t, dir), states
	}
	flip := func(line []byte) []byte {
		line = bytes.Clone(line)
		line[len(line)/2] ^= 0x01
		return line
	}
	line := func(t *testing.T, s *JobState, l journalLine) []byte {
		t.Helper()
		l.Gen = s.saved.gen
		b, err := appendLine(nil, &l)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name string
		edit func(t *testing.T, s *JobState, lines [][]byte) [][]byte
		line int // the line the error names; 0: no error
		want int // else the state it loads as (index into states)
	}{
		{"intact", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte { return l }, 0, 3},
		{"first line damaged", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte {
			l[0] = flip(l[0])
			return l
		}, 1, 0},
		{"middle of a save damaged", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte {
			l[2] = flip(l[2])
			return l
		}, 3, 0},
		{"line of a save lost", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte {
			return slices.Delete(l, 1, 2)
		}, 2, 0},
		{"not JSON", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte {
			l[0] = []byte("{\"crc32c\":\"zz\n")
			return l
		}, 1, 0},
		{"last line damaged", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte {
			l[3] = flip(l[3])
			return l
		}, 0, 2},
		{"last save damaged, a line short", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte {
			return l[:2]
		}, 0, 1},
		{"last save damaged, a line garbled", func(_ *testing.T, _ *JobState, l [][]byte) [][]byte {
			l[1] = append(bytes.Repeat([]byte{0}, 20), '\n') // a page not written before the crash
			return l[:3]
		}, 0, 1},
		{"chunk index invalid", func(t *testing.T, s *JobState, l [][]byte) [][]byte {
			return append(l, line(t, s, journalLine{Seq: 4, Chunk: &ChunkState{Index: -1}}))
		}, 5, 0},
		{"chunk out of order", func(t *testing.T, s *JobState, l [][]byte) [][]byte {
			return append(l, line(t, s, journalLine{Seq: 4, Chunk: &ChunkState{Index: 1}}))
		}, 5, 0},
		{"job of another video", func(t *testing.T, s *JobState, l [][]byte) [][]byte {
			other := splitJobState(20, 2)
			other.Version, other.VideoID = StateVersion, "other.mp4"
			return append(l, line(t, s, journalLine{Seq: 4, Job: &jobFields{JobState: other}}))
		}, 5, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, s, lines, states := setup(t)
			writeJournal(t, dir, tt.edit(t, s, lines)...)
			got, err := LoadState(dir, "clip.mp4")
			if tt.line != 0 {
				var je *JournalError
				if !errors.As(err, &je) || je.Line != tt.line || !strings.Contains(err.Error(), fmt.Sprintf("clip.mp4.journal line %d:", tt.line)) {
					t.Fatalf("LoadState: %v, want an error naming line %d", err, tt.line)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := stateJSON(t, got); g != states[tt.want] {
				t.Errorf("loaded\n%s\nwant the state after save %d\n%s", g, tt.want, states[tt.want])
			}
		})
	}
}

// TestLoadState_StaleJournal: the journal of an older snapshot (a crash
// between the snapshot's rename and the journal's) is skipped, alone or
// before the new generation's lines.
func TestLoadState_StaleJournal(t *testing.T) {
	dir := t.TempDir()
	s := sampleJobState()
	mustSave(t, s, dir)
	s.Record(result(0, 0))
	s.Record(result(1, 0))
	mustSave(t, s, dir)
	stale := journalLines(t, dir)
	s.forget(0)
	s.saved.path = "" // as after a failed Save: the next one is a snapshot
	mustSave(t, s, dir)
	writeJournal(t, dir, stale...)
	checkLoads(t, dir, s)

	s.Record(result(2, 1))
	gen := s.saved.gen
	mustSave(t, s, dir) // appends after the stale lines
	if s.saved.gen != gen {
		t.Fatal("a snapshot")
	}
	if n := len(journalLines(t, dir)); n != len(stale)+1 {
		t.Fatalf("%d lines, want the stale ones and one", n)
	}
	checkLoads(t, dir, s)
}

// TestJobState_Compaction: the journal is folded into a snapshot when it
// would outgrow it; the bytes written per Save stay about one line's.
func TestJobState_Compaction(t *testing.T) {
	dir := t.TempDir()
	s := splitJobState(200, 1)
	mustSave(t, s, dir)
	written, snapshots, saves, line := int64(0), 0, 2000, int64(0)
	for k := range saves {
		gen, journal, limit := s.saved.gen, s.saved.journalBytes, s.saved.journalLimit()
		s.Record(result(k%len(s.Chunks), k))
		mustSave(t, s, dir)
		if s.saved.gen != gen {
			snapshots++
			written += s.saved.snapshotBytes
			if journal < limit/2 || journal > limit {
				t.Fatalf("save %d: a snapshot after a journal of %d bytes (limit %d)", k, journal, limit)
			}
			checkLoads(t, dir, s)
		} else {
			written += s.saved.journalBytes - journal
			line = max(line, s.saved.journalBytes-journal)
		}
	}
	checkLoads(t, dir, s)
	perSave := written / int64(saves)
	t.Logf("%d snapshots in %d saves; %d bytes per save, a line is %d", snapshots, saves, perSave, line)
	if snapshots < 3 || perSave > 3*line {
		t.Errorf("%d snapshots, %d bytes per save (a line is %d): want a few, and O(1) bytes", snapshots, perSave, line)
	}
}

// TestJobState_SaveCostIsConstant: the bytes a Save of one changed chunk
// appends do not depend on how many chunks the map has, nor on which.
func TestJobState_SaveCostIsConstant(t *testing.T) {
	appended := func(n, index int) int64 {
		dir := t.TempDir()
		s := splitJobState(n, 1)
		for i := range n {
			s.Record(result(i, 3))
		}
		mustSave(t, s, dir)
		snapshot := fileSize(t, s.saved.path)
		s.Record(result(index, 4))
		mustSave(t, s, dir)
		if fileSize(t, s.saved.path) != snapshot || s.saved.seq != 1 {
			t.Fatalf("%d chunks: the Save rewrote the snapshot", n)
		}
		// Less the line's two members whose lengths vary by chance: the
		// random generation's digits, and updated_at, which drops
		// trailing zeros.
		varying := len(strconv.FormatInt(s.saved.gen, 10)) + len(s.UpdatedAt.Format(time.RFC3339Nano))
		return fileSize(t, journalPath(s.saved.path)) - int64(varying)
	}
	small := appended(7, 6)      // the 7th chunk of 7
	seventh := appended(7000, 6) // the 7th of 7,000
	last := appended(7000, 6999) // the 7,000th
	t.Logf("bytes appended: chunk 7 of 7: %d, of 7,000: %d; chunk 7,000: %d", small, seventh, last)
	// Only the index's digits differ (in index, location, start, size...).
	if seventh != small || last-small > 16 {
		t.Errorf("bytes appended: chunk 7 of 7: %d, of 7,000: %d; chunk 7,000: %d", small, seventh, last)
	}
}

// snapshotFiles copies dir's state files into a new directory, as a crash
// would leave them.
func snapshotFiles(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range stateFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestJobState_CrashAtEveryStep: the files as they are after each step of
// a sequence of Saves (appends, compactions) load as the state before the
// Save or after it; a Save failing at any step leaves one of the two, and
// the next Save all of it.
func TestJobState_CrashAtEveryStep(t *testing.T) {
	dir := t.TempDir()
	s := splitJobState(4, 1)
	mustSave(t, s, dir)
	r := rand.New(rand.NewPCG(4, 4))
	steps4 := []string{stepJournalWritten, stepJournalSynced, stepSnapshotRenamed, stepJournalReplaced}
	errInjected := errors.New("injected")
	steps, failures, nfailed := map[string]int{}, map[string]int{}, 0
	for k := range 160 {
		before := stateJSON(t, s)
		for range 1 + r.IntN(3) {
			mutate(r, s, k)
		}
		if k%5 == 0 {
			s.Chunks = slices.Clone(s.Chunks) // replaced: this Save is a snapshot
		}
		var loaded []string
		fail := "" // every other Save fails at the next step due
		if k%2 == 1 {
			fail = steps4[nfailed%len(steps4)]
		}
		s.saved.hook = func(step string) error {
			steps[step]++
			got, err := LoadState(snapshotFiles(t, dir), "clip.mp4")
			if err != nil {
				t.Fatalf("save %d, crash after %q: %v", k, step, err)
			}
			loaded = append(loaded, step+"\x00"+stateJSON(t, got))
			if step == fail {
				failures[step]++
				nfailed++
				return errInjected
			}
			return nil
		}
		err := s.Save(dir)
		s.saved.hook = nil
		after := stateJSON(t, s)
		for _, l := range loaded {
			step, got, _ := strings.Cut(l, "\x00")
			if got != before && got != after {
				t.Fatalf("save %d, crash after %q: loaded\n%s\nwant before\n%s\nor after\n%s", k, step, got, before, after)
			}
		}
		if err != nil {
			if !errors.Is(err, errInjected) {
				t.Fatal(err)
			}
			if got := stateJSON(t, mustLoad(t, dir)); got != before && got != after {
				t.Fatalf("save %d failed: loaded\n%s", k, got)
			}
			mustSave(t, s, dir)
		}
		checkLoads(t, dir, s)
	}
	t.Logf("crashes simulated: %v; failures: %v", steps, failures)
	for _, step := range steps4 {
		if steps[step] == 0 || failures[step] == 0 {
			t.Errorf("no crash, or no failure, after %q", step)
		}
	}
}

// TestLoadState_OldFormat: a state written before the journal (no
// generation, no journal) loads, alone even beside a journal; its first
// Save starts one.
func TestLoadState_OldFormat(t *testing.T) {
	dir := t.TempDir()
	s := sampleJobState()
	s.Record(result(1, 0))
	s.Version, s.CreatedAt, s.UpdatedAt = StateVersion, time.Now().UTC(), time.Now().UTC()
	if _, err := rewriteState(s, dir); err != nil {
		t.Fatal(err)
	}
	checkLoads(t, dir, s)
	writeJournal(t, dir, []byte(`{"crc32c":"00000000","gen":0,"seq":1,"chunk":{"index":0,"done":true}}`+"\n"))
	checkLoads(t, dir, s)

	old := mustLoad(t, dir)
	old.Record(result(0, 1))
	mustSave(t, old, dir)
	old.Record(result(2, 1))
	mustSave(t, old, dir)
	if old.saved.seq != 1 {
		t.Errorf("the second Save did not append")
	}
	checkLoads(t, dir, old)
}

// TestLoadState_WhileSaving: a reader, as `master status` is, sees a state
// some Save wrote whole, however it interleaves with the Saves.
func TestLoadState_WhileSaving(t *testing.T) {
	dir := t.TempDir()
	s := splitJobState(12, 1)
	var mu sync.Mutex
	saved := map[string]bool{}
	chunksJSON := func(s *JobState) string {
		b, err := json.Marshal(s.Chunks)
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	saved[chunksJSON(s)] = true
	mustSave(t, s, dir)
	done := make(chan struct{})
	var wg sync.WaitGroup
	loads := 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := LoadState(dir, "clip.mp4")
			if err != nil {
				t.Errorf("load %d: %v", loads, err)
				return
			}
			loads++
			mu.Lock()
			ok := saved[chunksJSON(got)]
			mu.Unlock()
			if !ok {
				t.Errorf("load %d: a state no Save wrote:\n%s", loads, chunksJSON(got))
				return
			}
		}
	})
	r := rand.New(rand.NewPCG(5, 5))
	for k := range 400 {
		for range 1 + r.IntN(3) {
			i := r.IntN(len(s.Chunks))
			if r.IntN(4) == 0 {
				s.forget(i)
			} else {
				s.Record(result(s.Chunks[i].Index, k))
			}
		}
		if k%8 == 0 {
			s.Chunks = slices.Clone(s.Chunks) // replaced: this Save is a snapshot
		}
		mu.Lock()
		saved[chunksJSON(s)] = true
		mu.Unlock()
		if err := s.Save(dir); err != nil {
			t.Error(err)
			break
		}
	}
	close(done)
	wg.Wait()
	t.Logf("%d loads during 400 saves", loads)
}

// TestJobState_MarkWhileSaving: a change marked outside the caller's lock
// (a breach of the contract) does not crash a Save running meanwhile.
func TestJobState_MarkWhileSaving(t *testing.T) {
	dir := t.TempDir()
	s := splitJobState(50, 1)
	mustSave(t, s, dir)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
				s.mark(i % 50)
			}
		}
	})
	for range 100 {
		mustSave(t, s, dir)
	}
	close(done)
	wg.Wait()
	mustSave(t, s, dir)
	checkLoads(t, dir, s)
}

// TestJobState_FailedWriteKeepsOld: a write failing midway, or a state
// that cannot be encoded, leaves the previous file and no temporary file.
func TestJobState_FailedWriteKeepsOld(t *testing.T) {
	dir := t.TempDir()
	s := sampleJobState()
	mustSave(t, s, dir)
	path := filepath.Join(dir, "clip.mp4.json")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	errInjected := errors.New("injected: no space left on device")
	err = fsutil.WriteFileAtomic(filepath.Join(dir, "clip.mp4.json"), func(w io.Writer) error {
		w.Write([]byte(`{"version": 1, "video_id": "clip.mp4", "chu`))
		return errInjected
	})
	if !errors.Is(err, errInjected) {
		t.Fatalf("WriteFileAtomic: %v, want the injected error", err)
	}

	s.SegmentSeconds = math.NaN() // JSON cannot encode it
	if err := s.Save(dir); err == nil {
		t.Fatal("Save of a NaN succeeded")
	}
	s.SegmentSeconds = 2.5
	s.Chunks[0].Start = math.NaN()
	s.markChanged(0)
	if err := s.Save(dir); err == nil {
		t.Fatal("Save of a NaN chunk succeeded")
	}

	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, old) {
		t.Errorf("the state changed after failed writes (err %v)", err)
	}
	if size := fileSize(t, filepath.Join(dir, "clip.mp4.journal")); size != 0 {
		t.Errorf("the journal holds %d bytes", size)
	}
	if names := stateDirNames(t, dir); !slices.Equal(names, stateFiles) {
		t.Errorf("directory holds %v, want only the state", names)
	}
}

// TestJobState_JournalIsInput: a snapshot refuses to truncate an input
// that lies where the journal goes.
func TestJobState_JournalIsInput(t *testing.T) {
	dir := t.TempDir()
	s := sampleJobState()
	s.Source = filepath.Join(dir, "clip.mp4.journal")
	if err := os.WriteFile(s.Source, []byte("video"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(dir); err == nil || !strings.Contains(err.Error(), "is the input") {
		t.Fatalf("Save: %v, want a refusal", err)
	}
	if data, err := os.ReadFile(s.Source); err != nil || string(data) != "video" {
		t.Errorf("the input was touched: %q, %v", data, err)
	}
}

// LoadState only reads; removeStateTemps, run when a job opens its state,
// clears what a crashed save left, and a journal without its snapshot.
func TestRemoveStateTemps(t *testing.T) {
	dir := t.TempDir()
	mustSave(t, sampleJobState(), dir)
	crashed := filepath.Join(dir, fsutil.TempPrefix("clip.mp4.json")+"12345")
	crashedJournal := filepath.Join(dir, fsutil.TempPrefix("clip.mp4.journal")+"12345")
	other := filepath.Join(dir, fsutil.TempPrefix("other.mp4.json")+"12345")
	orphan := filepath.Join(dir, "gone.mp4.journal")
	for _, p := range []string{crashed, crashedJournal, other, orphan} {
		if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustLoad(t, dir)
	if _, err := os.Stat(crashed); err != nil {
		t.Fatalf("LoadState removed a temp file a running save may own: %v", err)
	}
	removeStateTemps(dir, "clip.mp4")
	for _, p := range []string{crashed, crashedJournal} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover temp of the video still there: %v", err)
		}
	}
	for _, p := range []string{other, orphan, filepath.Join(dir, "clip.mp4.journal")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("another video's file, or the journal of a state, was removed: %v", err)
		}
	}
	removeStateTemps(dir, "gone.mp4")
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a journal without its snapshot is still there: %v", err)
	}
}

func TestLoadState_ErrNotExist(t *testing.T) {
	_, err := LoadState(t.TempDir(), "absent.mp4")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadState: %v, want ErrNotExist", err)
	}
}

func TestJobState_InvalidVideoID(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "state")
	for _, id := range []string{"", "../escape", "a/b", ".hidden", "metadata", "sp ace", "..", string(make([]byte, 300))} {
		s := sampleJobState()
		s.VideoID = id
		if err := s.Save(dir); err == nil {
			t.Errorf("Save accepted video id %q", id)
		}
		if _, err := LoadState(dir, id); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("LoadState(%q): %v, want an invalid-id error", id, err)
		}
	}
	if names := stateDirNames(t, parent); len(names) != 0 {
		t.Errorf("files created: %v", names)
	}
}

func TestLoadState_Refuses(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "clip.mp4.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"other video":     `{"version": 1, "video_id": "other.mp4"}`,
		"future version":  `{"version": 2, "video_id": "clip.mp4"}`,
		"no version":      `{"video_id": "clip.mp4"}`,
		"not json":        `{"version": 1,`,
		"duplicate chunk": `{"version": 1, "video_id": "clip.mp4", "chunks": [{"index": 1}, {"index": 1}]}`,
		"unsorted chunks": `{"version": 1, "video_id": "clip.mp4", "chunks": [{"index": 2}, {"index": 1}]}`,
		"negative chunk":  `{"version": 1, "video_id": "clip.mp4", "chunks": [{"index": -1}]}`,
	} {
		write(content)
		if _, err := LoadState(dir, "clip.mp4"); err == nil {
			t.Errorf("%s: LoadState accepted it", name)
		}
	}
}
