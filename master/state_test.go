package master

// White-box: the fault test calls the atomic writer directly.

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/fsutil"
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

func TestJobState_SaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // Save creates it
	s := sampleJobState()
	s.Record(ChunkResult{Index: 1, Worker: "w1:1", Location: "/s/clip.mp4/chunk_1.shard", Checksum: "abc",
		EncodedSize: 900, Encoder: "ffmpeg", VideoCodec: "h264", Attempts: 2, MediaChecked: true})
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	if s.Version != StateVersion || s.CreatedAt.IsZero() || s.UpdatedAt.Before(s.CreatedAt) {
		t.Errorf("Save did not stamp version and times: %d %v %v", s.Version, s.CreatedAt, s.UpdatedAt)
	}
	got, err := LoadState(dir, "clip.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("loaded\n%+v\nwant\n%+v", got, s)
	}
	if names := stateDirNames(t, dir); !slices.Equal(names, []string{"clip.mp4.json"}) {
		t.Errorf("directory holds %v", names)
	}

	created := s.CreatedAt
	time.Sleep(2 * time.Millisecond)
	s.Record(ChunkResult{Index: 0, Worker: "w2:2", Checksum: "def"})
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err = LoadState(dir, "clip.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(created) || !got.UpdatedAt.After(created) {
		t.Errorf("second save: created %v (want %v), updated %v", got.CreatedAt, created, got.UpdatedAt)
	}
	if p := got.Pending(); !slices.Equal(p, []int{2}) {
		t.Errorf("pending %v, want [2]", p)
	}
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

// TestJobState_FailedWriteKeepsOld: a write failing midway, or a state
// that cannot be encoded, leaves the previous file and no temporary file.
func TestJobState_FailedWriteKeepsOld(t *testing.T) {
	dir := t.TempDir()
	s := sampleJobState()
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
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

	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, old) {
		t.Errorf("the state changed after failed writes (err %v)", err)
	}
	if names := stateDirNames(t, dir); !slices.Equal(names, []string{"clip.mp4.json"}) {
		t.Errorf("directory holds %v, want only the state", names)
	}
}

// LoadState only reads; removeStateTemps, run when a job opens its state,
// clears what a crashed save left.
func TestRemoveStateTemps(t *testing.T) {
	dir := t.TempDir()
	if err := sampleJobState().Save(dir); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(dir, fsutil.TempPrefix("clip.mp4.json")+"12345")
	other := filepath.Join(dir, fsutil.TempPrefix("other.mp4.json")+"12345")
	for _, p := range []string{crashed, other} {
		if err := os.WriteFile(p, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadState(dir, "clip.mp4"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); err != nil {
		t.Fatalf("LoadState removed a temp file a running save may own: %v", err)
	}
	removeStateTemps(dir, "clip.mp4")
	if _, err := os.Stat(crashed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temp of the video still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another video's temp was removed: %v", err)
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
