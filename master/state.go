package master

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/chunkid"
	"github.com/videoshard/videoshard/internal/fsutil"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
)

// StateVersion is the JobState format this package writes and reads. The
// journal did not change it: a snapshot is still a whole version-1 state,
// one that a master without journals reads as it was when written.
const StateVersion = 1

// JobState is a job's chunk map, persisted in dir so an interrupted job can
// resume: a snapshot, <dir>/<video_id>.json, and a journal beside it,
// <dir>/<video_id>.journal, of the chunks changed since (see Save).
//
// It is not safe for concurrent use: callers serialise (Run's onDone is
// serialised; the chunk checker shares a mutex with it). One JobState
// saves a job's files at a time; any number of processes may LoadState
// them meanwhile. A chunk changed in place other than by Record, setSplit
// or forget must be marked with markChanged before Save, or it reaches the
// disk only with the next snapshot; chunks added, removed or replaced
// through Chunks itself need no mark: the next Save writes a snapshot.
// A JobState is not copied once used (it holds a mutex).
type JobState struct {
	Version int    `json:"version"`
	VideoID string `json:"video_id"`
	// Source is the input file; SourceSize and SourceModTime identify its
	// content, so a resume can refuse a changed input.
	Source         string    `json:"source"`
	SourceSize     int64     `json:"source_size"`
	SourceModTime  time.Time `json:"source_mod_time"`
	SourceFrames   int64     `json:"source_frames"`
	SegmentSeconds float64   `json:"segment_seconds"`
	// Encoding holds the requested options (codec, crf, preset), so a
	// resume can refuse different ones.
	Encoding map[string]string `json:"encoding,omitempty"`
	// Replicas is how many verified copies of each chunk the job keeps
	// (JobConfig.Replicas); 0, in a map written before replication, means 1.
	Replicas  int       `json:"replicas,omitempty"`
	Output    string    `json:"output"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Chunks is sorted by Index.
	Chunks []ChunkState `json:"chunks"`

	saved savedState
}

// ChunkState is one chunk of a JobState. Frames, Size, Start and Duration
// describe the chunk as split (see Chunk); the other fields are the stored
// result once Done.
type ChunkState struct {
	Index int `json:"index"`
	// FirstFrame and Frames are the source pictures the chunk holds
	// (Chunk.FirstFrame, Chunk.Frames).
	FirstFrame int64 `json:"first_frame"`
	Frames     int64 `json:"frames"`
	Size       int64 `json:"size"`
	// TrimStart and Decoded are Chunk.TrimStart and Chunk.Decoded; Lossless
	// is Chunk.Lossless.
	TrimStart int64 `json:"trim_start,omitempty"`
	Decoded   int64 `json:"decoded,omitempty"`
	Lossless  bool  `json:"lossless,omitempty"`
	// Start and Duration are Chunk.Start and Chunk.Duration, kept so a
	// resumed job can place the shards without splitting again.
	Start    float64 `json:"start,omitempty"`
	Duration float64 `json:"duration,omitempty"`
	Done     bool    `json:"done"`
	// Worker and Location are the chunk's first copy (the encoding
	// worker's, until that copy is moved or lost), Checksum every copy's.
	Worker   string `json:"worker,omitempty"`
	Location string `json:"location,omitempty"`
	Checksum string `json:"checksum_sha256,omitempty"`
	// Replicas are every verified copy, the first one included; empty in
	// a map written before replication, whose one copy is Worker's (see
	// Copies).
	Replicas     []Replica `json:"replicas,omitempty"`
	Encoder      string    `json:"encoder,omitempty"`
	VideoCodec   string    `json:"video_codec,omitempty"`
	EncodedSize  int64     `json:"encoded_size,omitempty"`
	Attempts     int       `json:"attempts,omitempty"`
	MediaChecked bool      `json:"media_checked,omitempty"`
	// Quality is the shard's pictures measured against the source's
	// (QualityMode says how many of them); QualityProblem says why they
	// could not be paired. Nil when not measured.
	Quality        *media.QualityStats `json:"quality,omitempty"`
	QualityMode    VerifyMode          `json:"quality_mode,omitempty"`
	QualityProblem string              `json:"quality_problem,omitempty"`
	// Fields, when set, says which of the measured pictures are coded in
	// another field mode than the source's.
	Fields *media.FieldCheck `json:"fields_differ,omitempty"`
}

// StatePath returns where the state of videoID lives in dir (its snapshot;
// the journal is beside it). The id is validated like the worker validates
// it, so the path never leaves dir.
func StatePath(dir, videoID string) (string, error) {
	if err := chunkid.ValidateVideoID(videoID); err != nil {
		return "", err
	}
	return filepath.Join(dir, videoID+".json"), nil
}

// journalPath is the journal beside the snapshot at path.
func journalPath(path string) string {
	return strings.TrimSuffix(path, ".json") + ".journal"
}

// The chunk map on disk, and what a crash leaves of it.
//
// The snapshot <video_id>.json is the whole JobState as indented JSON, the
// format masters without journals wrote, plus "generation": a random number
// naming this snapshot. The journal <video_id>.journal holds JSON lines, one
// per chunk changed since the snapshot:
//
//	{"crc32c":"1c291ca3","gen":G,"seq":S,"of":K,"updated_at":T,"job":{...},"chunk":{...}}
//
// crc32c is the CRC-32C of the line without that member (the JSON object
// that follows it, its opening brace restored), so a damaged line is told
// from a good one even when it still parses; gen is the generation of the
// snapshot the line follows; seq numbers the Saves since that snapshot; of
// is how many lines that Save wrote (omitted when one); chunk is the whole
// ChunkState of one chunk, replacing the chunk of its index or, past the
// last one, added; job, on a Save's first line when they changed, is the
// job-level fields. A line never depends on another line's content, but a
// Save's lines apply together: a Save is all or nothing.
//
// Save appends the lines of the chunks changed since the last Save in one
// write to the journal, opened O_APPEND, and syncs it (fsync: each append
// grows the file, so fdatasync would have to write the size too). It writes
// a snapshot instead on the first Save of a JobState (a new one, or one
// LoadState returned), after a failed Save, after a change that lines cannot
// say (chunks inserted before the last one, removed, or Chunks replaced),
// and when the lines would make the journal larger than the snapshot (or
// than minJournalBytes, if more): a snapshot's O(chunks) bytes are spread
// over the O(chunks) Saves before it, so a Save costs O(1) however large
// the map. A snapshot is written so:
//
//  1. the snapshot, with a new generation, goes to a temporary file, which
//     is synced and renamed over <video_id>.json; the directory is synced;
//  2. an empty journal is written and renamed over <video_id>.journal the
//     same way.
//
// So a file only ever grows, by appends, or is replaced whole: a reader
// that opened the old journal reads it whole, never part of the new one.
//
// What a crash leaves, and how LoadState reads it:
//
//   - during an append: the journal ends with a torn line, or with only
//     some of a Save's lines, maybe damaged ones: that Save had not
//     returned, and LoadState ignores it. Damage with a complete Save after
//     it happened to acknowledged lines: an error naming the line.
//   - in 1 before the rename: the old snapshot and journal.
//   - after the rename, before 2's: the new snapshot, which holds
//     everything, and the old journal, whose lines are of another
//     generation: LoadState skips them.
//   - after 2: the new snapshot and an empty journal.
//
// Either step may leave a temporary file, which LoadState ignores and
// removeStateTemps removes. The snapshot's rename is durable before the
// journal's starts, so the old journal never goes before the snapshot that
// replaces it. A Save returns only once what it wrote is synced: a state it
// acknowledged survives kill -9 and power loss. A journal without its
// snapshot (the snapshot removed to start over) belongs to no state:
// LoadState never reads it, the next snapshot replaces it, and
// removeStateTemps removes it.

// savedState is what a JobState knows of its files, so that Save can append
// rather than rewrite. path is "" until a snapshot is written and after a
// failed Save: the next Save writes a snapshot.
type savedState struct {
	path          string // the snapshot
	gen           int64  // its generation
	seq           int64  // the last Save appended since it
	snapshotBytes int64
	journalBytes  int64
	// len(Chunks), &Chunks[0] (nil when empty) and the last chunk's index
	// (-1 when empty) at the last Save: lines can add chunks only past it,
	// and another array means Chunks was replaced.
	chunks int
	first  *ChunkState
	last   int
	header []byte // headerJSON at the last Save
	// mu guards changed, the indexes of the chunks changed since the last
	// Save. JobState is not safe for concurrent use, but a mark made
	// outside the caller's lock must not crash the process: a map written
	// while it is read is fatal.
	mu      sync.Mutex
	changed map[int]struct{}
	// hook, for tests, runs after each step of a Save; an error fails the
	// Save there.
	hook func(step string) error
}

// Steps of a Save that the hook sees.
const (
	stepJournalWritten  = "journal written"  // the lines, not yet synced
	stepJournalSynced   = "journal synced"   // the Save is durable
	stepSnapshotRenamed = "snapshot renamed" // 1 done, the journal still holds the old lines
	stepJournalReplaced = "journal replaced" // 2 done
)

// minJournalBytes is the least a journal may grow to before a snapshot
// replaces it: a snapshot takes four syncs, an append one, so for a small
// map compacting at the snapshot's size would double what a Save costs;
// 64 KiB of lines replay in about a millisecond.
const minJournalBytes = 64 << 10

// journalLimit is how large the journal may grow before a snapshot.
func (sv *savedState) journalLimit() int64 { return max(sv.snapshotBytes, minJournalBytes) }

func (sv *savedState) step(name string) error {
	if sv.hook == nil {
		return nil
	}
	return sv.hook(name)
}

// snapshotFile is the snapshot's JSON: the JobState and its generation,
// which JobState keeps to itself so callers cannot set it.
type snapshotFile struct {
	Generation int64 `json:"generation,omitempty"`
	*JobState
}

// jobFields is the JSON of a JobState's job-level fields as a journal line
// carries them: the outer Chunks and UpdatedAt, always nil and so omitted,
// hide the embedded ones (the line has its own updated_at).
type jobFields struct {
	*JobState
	Chunks    []ChunkState `json:"chunks,omitempty"`
	UpdatedAt *time.Time   `json:"updated_at,omitempty"`
}

// journalLine is one line of the journal (see above), its checksum aside.
type journalLine struct {
	Gen       int64       `json:"gen"`
	Seq       int64       `json:"seq"`
	Of        int         `json:"of,omitempty"`
	UpdatedAt time.Time   `json:"updated_at"`
	Job       *jobFields  `json:"job,omitempty"`
	Chunk     *ChunkState `json:"chunk,omitempty"`
}

// lines is how many lines the Save of l wrote.
func (l *journalLine) lines() int { return max(l.Of, 1) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcHead is how a line starts: the checksum, 8 hex digits, comes next.
const crcHead = `{"crc32c":"`

// appendLine appends the journal line of l to buf.
func appendLine(buf []byte, l *journalLine) ([]byte, error) {
	body, err := json.Marshal(l)
	if err != nil {
		return buf, err
	}
	buf = fmt.Appendf(buf, crcHead+`%08x",`, crc32.Checksum(body, castagnoli))
	buf = append(buf, body[1:]...)
	return append(buf, '\n'), nil
}

// parseLine reads a journal line, without its newline.
func parseLine(line []byte) (journalLine, error) {
	var l journalLine
	n := len(crcHead) + 8
	if len(line) < n+3 || !bytes.HasPrefix(line, []byte(crcHead)) || string(line[n:n+2]) != `",` {
		return l, errors.New("not a journal record")
	}
	sum, err := strconv.ParseUint(string(line[len(crcHead):n]), 16, 32)
	if err != nil {
		return l, errors.New("not a journal record")
	}
	body := append([]byte{'{'}, line[n+2:]...)
	if crc32.Checksum(body, castagnoli) != uint32(sum) {
		return l, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return l, err
	}
	return l, nil
}

// JournalError is a journal line LoadState cannot apply: damaged with a
// complete Save after it, or applying a chunk or job that does not fit
// the map. Line counts from 1.
type JournalError struct {
	Path string
	Line int
	Err  error
}

func (e *JournalError) Error() string { return fmt.Sprintf("%s line %d: %v", e.Path, e.Line, e.Err) }

func (e *JournalError) Unwrap() error { return e.Err }

// loadAttempts bounds how often LoadState reads when Saves keep replacing
// the snapshot during its reads.
const loadAttempts = 3

// LoadState reads the state of videoID from dir: the snapshot, then the
// complete Saves its journal holds for the snapshot's generation, in order.
// A torn last line or an incomplete last Save (a crash, or a Save in
// progress) is ignored; a damaged line before a complete Save, or one that
// names an invalid chunk or breaks the order of the chunks, is a
// *JournalError naming the line. A missing state is an error wrapping
// os.ErrNotExist; a snapshot without a generation (written before the
// journal existed) is read alone.
//
// It only reads: a job may be saving the state at the same time. Only
// lines of the snapshot's generation apply, and those are a prefix of its
// journal, so what LoadState reads is a state some Save wrote, never a mix.
// If the snapshot was replaced during the read, that state may be older
// than the new snapshot's (its journal was being replaced): LoadState
// reads again, for the new one.
func LoadState(dir, videoID string) (*JobState, error) {
	path, err := StatePath(dir, videoID)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	for attempt := 1; ; attempt++ {
		s, swapped, err := readState(path, videoID)
		if swapped && attempt < loadAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// readState reads the snapshot at path and replays its journal. swapped
// reports that the snapshot was replaced meanwhile.
func readState(path, videoID string) (s *JobState, swapped bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("load state: %w", err)
	}
	fi, err := f.Stat()
	var data []byte
	if err == nil {
		data, err = io.ReadAll(f)
	}
	f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("load state: %w", err)
	}
	s = new(JobState)
	file := snapshotFile{JobState: s}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, false, fmt.Errorf("load state %s: %w", path, err)
	}
	if s.Version != StateVersion {
		return nil, false, fmt.Errorf("load state %s: version %d, this master reads %d", path, s.Version, StateVersion)
	}
	if s.VideoID != videoID {
		return nil, false, fmt.Errorf("load state %s: it belongs to video %q", path, s.VideoID)
	}
	if err := s.check(); err != nil {
		return nil, false, fmt.Errorf("load state %s: %w", path, err)
	}
	if file.Generation != 0 {
		jpath := journalPath(path)
		journal, rerr := os.ReadFile(jpath)
		switch {
		case errors.Is(rerr, fs.ErrNotExist):
		case rerr != nil:
			err = fmt.Errorf("load state: %w", rerr)
		default:
			if s, rerr = replay(s, journal, file.Generation, jpath); rerr != nil {
				err = fmt.Errorf("load state: %w", rerr)
			}
		}
	}
	if now, serr := os.Stat(path); serr == nil && !os.SameFile(fi, now) {
		swapped = true
	}
	if err != nil {
		return nil, swapped, err
	}
	return s, swapped, nil
}

// replay applies to s the complete Saves that journal (read from path)
// holds for generation gen, and returns the result.
func replay(s *JobState, journal []byte, gen int64, path string) (*JobState, error) {
	type numbered struct {
		journalLine
		n int
	}
	var save []numbered // the Save being read
	damaged := 0        // the first line not read, or of a Save cut short
	var damage error
	for n := 1; ; n++ {
		end := bytes.IndexByte(journal, '\n')
		if end < 0 {
			return s, nil // a torn line, or none: the rest was never acknowledged
		}
		l, err := parseLine(journal[:end])
		journal = journal[end+1:]
		if err != nil {
			if damaged == 0 {
				damaged, damage = n, err
			}
			continue
		}
		if l.Gen != gen {
			continue // an older snapshot's, left by a crash before step 2
		}
		if len(save) > 0 && (l.Seq != save[0].Seq || l.Of != save[0].Of) {
			if damaged == 0 {
				damaged, damage = save[0].n, fmt.Errorf("save %d has %d of its %d lines", save[0].Seq, len(save), save[0].lines())
			}
			save = save[:0]
		}
		save = append(save, numbered{l, n})
		if len(save) < l.lines() {
			continue
		}
		if damaged != 0 {
			return nil, &JournalError{Path: path, Line: damaged, Err: damage}
		}
		for _, l := range save {
			if s, err = apply(s, &l.journalLine); err != nil {
				return nil, &JournalError{Path: path, Line: l.n, Err: err}
			}
		}
		save = save[:0]
	}
}

// apply applies one journal line to s, and returns the result: the job
// fields of a line that has them, with s's chunks.
func apply(s *JobState, l *journalLine) (*JobState, error) {
	if l.Job != nil {
		j := l.Job.JobState
		if j == nil || j.Version != StateVersion || j.VideoID != s.VideoID {
			return nil, errors.New("the job fields are another job's or another version's")
		}
		j.Chunks = s.Chunks
		s = j
	}
	s.UpdatedAt = l.UpdatedAt
	c := l.Chunk
	if c == nil {
		return s, nil
	}
	if err := chunkid.ValidateChunkIndex(int64(c.Index)); err != nil {
		return nil, err
	}
	i, found := s.find(c.Index)
	switch {
	case found:
		s.Chunks[i] = *c
	case i == len(s.Chunks):
		s.Chunks = append(s.Chunks, *c)
	default:
		return nil, fmt.Errorf("chunk %d is not in the map and not past its last chunk %d", c.Index, s.Chunks[len(s.Chunks)-1].Index)
	}
	return s, nil
}

func (s *JobState) check() error {
	for i, c := range s.Chunks {
		if err := chunkid.ValidateChunkIndex(int64(c.Index)); err != nil {
			return err
		}
		if i > 0 && c.Index <= s.Chunks[i-1].Index {
			return fmt.Errorf("chunks are not sorted by index without duplicates at chunk %d", c.Index)
		}
	}
	return nil
}

// find returns the position of the chunk of index in s.Chunks, or where it
// would be inserted.
func (s *JobState) find(index int) (int, bool) {
	return slices.BinarySearchFunc(s.Chunks, index, func(c ChunkState, idx int) int {
		return cmp.Compare(c.Index, idx)
	})
}

// Save makes s durable in dir, creating dir if needed: it appends the
// chunks changed since the last Save to the journal, or writes a snapshot
// (see "The chunk map on disk" above for which, and what a crash leaves).
// Either way, once it returns, LoadState reads s, even after a crash. A
// Save with nothing changed writes nothing. It sets Version (if zero),
// CreatedAt (if zero), and UpdatedAt to now when it writes. A failed Save
// leaves the files as they were or holding s, and the next one writes a
// snapshot.
func (s *JobState) Save(dir string) error {
	path, err := StatePath(dir, s.VideoID)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if s.Version == 0 {
		s.Version = StateVersion
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now().UTC()
	}
	if err := s.save(dir, path); err != nil {
		s.saved.path = "" // the files may hold part of it: start again from a snapshot
		return fmt.Errorf("save state %s: %w", path, err)
	}
	return nil
}

// save is Save once path is known: it appends, or writes a snapshot.
func (s *JobState) save(dir, path string) error {
	header, err := json.Marshal(jobFields{JobState: s})
	if err != nil {
		return err
	}
	lines, full, err := s.journalLines(path, header)
	if err != nil || !full && lines == nil {
		return err
	}
	if !full {
		if err := s.appendJournal(path, lines, header); !errors.Is(err, errNoJournal) {
			return err
		}
	}
	return s.writeSnapshot(dir, path, header)
}

// errNoJournal: the journal is gone (removed by hand); a snapshot starts
// another.
var errNoJournal = errors.New("no journal")

// journalLines returns the lines that save the changes since the last Save
// (nil: none), or full when a snapshot must be written instead; header is
// the job fields' JSON. It takes the marks, and sets UpdatedAt when it
// returns lines.
func (s *JobState) journalLines(path string, header []byte) (lines []byte, full bool, err error) {
	sv := &s.saved
	sv.mu.Lock()
	changed := sv.changed
	sv.changed = nil
	sv.mu.Unlock()
	var first *ChunkState
	if len(s.Chunks) > 0 {
		first = &s.Chunks[0]
	}
	if sv.path != path || first != sv.first {
		return nil, true, nil
	}
	indexes := slices.Sorted(maps.Keys(changed))
	past, _ := slices.BinarySearch(indexes, sv.last+1)
	if len(s.Chunks) != sv.chunks+len(indexes)-past {
		return nil, true, nil // chunks inserted or removed
	}
	job := !bytes.Equal(header, sv.header)
	if len(indexes) == 0 && !job {
		return nil, false, nil
	}
	s.UpdatedAt = time.Now().UTC()
	l := journalLine{Gen: sv.gen, Seq: sv.seq + 1, UpdatedAt: s.UpdatedAt}
	n := max(len(indexes), 1)
	if n > 1 {
		l.Of = n
	}
	for k := range n {
		l.Job, l.Chunk = nil, nil
		if k == 0 && job {
			l.Job = &jobFields{JobState: s}
		}
		if k < len(indexes) {
			i, found := s.find(indexes[k])
			if !found {
				return nil, true, nil // removed since it changed
			}
			if err := chunkid.ValidateChunkIndex(int64(indexes[k])); err != nil {
				return nil, false, err
			}
			l.Chunk = &s.Chunks[i]
		}
		if lines, err = appendLine(lines, &l); err != nil {
			return nil, false, err
		}
	}
	if sv.journalBytes+int64(len(lines)) > sv.journalLimit() {
		return nil, true, nil
	}
	return lines, false, nil
}

// appendJournal appends lines, which journalLines made, to the journal of
// the snapshot at path, and syncs it.
func (s *JobState) appendJournal(path string, lines, header []byte) error {
	f, err := os.OpenFile(journalPath(path), os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return errNoJournal
	}
	if err != nil {
		return err
	}
	_, err = f.Write(lines)
	if err == nil {
		err = s.saved.step(stepJournalWritten)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.saved.step(stepJournalSynced)
	}
	if err != nil {
		return err
	}
	sv := &s.saved
	sv.seq++
	sv.journalBytes += int64(len(lines))
	s.savedChunks(header)
	return nil
}

// writeSnapshot writes s to the snapshot at path and starts its journal, in
// steps 1 and 2 above.
func (s *JobState) writeSnapshot(dir, path string, header []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	s.UpdatedAt = time.Now().UTC()
	gen := rand.Int64N(1<<53) + 1 // 53 bits: exact in any JSON reader
	for gen == s.saved.gen {
		gen = rand.Int64N(1<<53) + 1
	}
	data, err := json.MarshalIndent(snapshotFile{Generation: gen, JobState: s}, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	jpath := journalPath(path)
	if sameFile(jpath, s.Source) {
		return fmt.Errorf("the journal %s is the input %s: choose another --state-dir", jpath, s.Source)
	}
	err = fsutil.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err == nil {
		err = s.saved.step(stepSnapshotRenamed)
	}
	if err == nil {
		err = fsutil.WriteFileAtomic(jpath, func(io.Writer) error { return nil })
	}
	if err == nil {
		err = s.saved.step(stepJournalReplaced)
	}
	if err != nil {
		return err
	}
	sv := &s.saved
	sv.path, sv.gen, sv.seq = path, gen, 0
	sv.snapshotBytes, sv.journalBytes = int64(len(data)), 0
	s.savedChunks(header)
	return nil
}

// savedChunks records, after a Save, what the files now hold.
func (s *JobState) savedChunks(header []byte) {
	sv := &s.saved
	sv.chunks, sv.first, sv.last = len(s.Chunks), nil, -1
	if len(s.Chunks) > 0 {
		sv.first, sv.last = &s.Chunks[0], s.Chunks[len(s.Chunks)-1].Index
	}
	sv.header = header
}

// markChanged marks the chunk at position i changed, for the next Save.
func (s *JobState) markChanged(i int) { s.mark(s.Chunks[i].Index) }

func (s *JobState) mark(index int) {
	sv := &s.saved
	sv.mu.Lock()
	if sv.changed == nil {
		sv.changed = make(map[int]struct{})
	}
	sv.changed[index] = struct{}{}
	sv.mu.Unlock()
}

// Record marks the chunk of r done with r's result, adding the chunk if s
// does not list it.
func (s *JobState) Record(r ChunkResult) {
	i, found := s.find(r.Index)
	if !found {
		s.Chunks = slices.Insert(s.Chunks, i, ChunkState{Index: r.Index, Size: r.OriginalSize})
	}
	c := &s.Chunks[i]
	c.Done = true
	c.Worker = r.Worker
	c.Location = r.Location
	c.Checksum = r.Checksum
	c.Encoder = r.Encoder
	c.VideoCodec = r.VideoCodec
	c.EncodedSize = r.EncodedSize
	c.Attempts = r.Attempts
	c.MediaChecked = r.MediaChecked
	c.Quality, c.QualityMode, c.QualityProblem, c.Fields = nil, "", "", nil // a new encode, not measured yet
	c.Replicas = []Replica{{Worker: r.Worker, Location: r.Location}}
	s.mark(r.Index)
}

// setSplit records what the split says of chunk c anew (proven since, or
// made again).
func (s *JobState) setSplit(c media.Chunk) {
	i, found := s.find(c.Index)
	if !found {
		return
	}
	cs := &s.Chunks[i]
	cs.Size, cs.TrimStart, cs.Decoded, cs.Lossless = c.Size, c.TrimStart, c.Decoded, c.Lossless
	s.mark(c.Index)
}

// Pending returns the indexes of the chunks not done, in order.
func (s *JobState) Pending() []int {
	var p []int
	for _, c := range s.Chunks {
		if !c.Done {
			p = append(p, c.Index)
		}
	}
	return p
}

// forget marks chunk i not done and clears its result.
func (s *JobState) forget(i int) {
	c := &s.Chunks[i]
	*c = ChunkState{Index: c.Index, FirstFrame: c.FirstFrame, Frames: c.Frames, Size: c.Size,
		TrimStart: c.TrimStart, Decoded: c.Decoded, Lossless: c.Lossless, Start: c.Start, Duration: c.Duration}
	s.mark(c.Index)
}

// ConfirmDone checks, for a resume, that the workers still hold the chunks
// s says are done: one GetVideoMetadata per worker, in parallel. A copy is
// confirmed if its worker lists the chunk with the same checksum;
// otherwise (the worker is not in clients, does not answer, no longer has
// it, or has other content) it is dropped from s. A chunk is confirmed
// when a copy is; one left with none is missing, and marked not done so
// Pending returns it for dispatch again. Both lists are sorted.
// Cancelling ctx makes every unconfirmed chunk missing.
func ConfirmDone(ctx context.Context, clients map[string]*client.Client, s *JobState) (confirmed, missing []int) {
	byWorker := make(map[string][]int) // worker -> positions in s.Chunks
	for i, c := range s.Chunks {
		if c.Done {
			for _, r := range c.Copies() {
				byWorker[r.Worker] = append(byWorker[r.Worker], i)
			}
		}
	}
	type answer struct {
		addr      string
		positions []int
		have      map[int]string // chunk index -> checksum on the worker
	}
	answers := make(chan answer, len(byWorker))
	var wg sync.WaitGroup
	for addr, positions := range byWorker {
		c := clients[addr]
		if c == nil {
			answers <- answer{addr: addr, positions: positions}
			continue
		}
		wg.Go(func() {
			a := answer{addr: addr, positions: positions, have: make(map[int]string)}
			resp, err := c.Metadata(ctx, s.VideoID)
			if err == nil {
				for _, m := range resp.GetChunksMetadata() {
					a.have[int(m.GetChunkIndex())] = m.GetChecksumSha256()
				}
			} else if status.Code(err) != codes.NotFound {
				// Unknown is as good as missing: the copy is made again.
				a.have = nil
			}
			answers <- a
		})
	}
	wg.Wait()
	close(answers)
	held := make(map[int]map[string]bool) // position -> workers confirmed
	for a := range answers {
		for _, i := range a.positions {
			c := s.Chunks[i]
			if sum, ok := a.have[c.Index]; ok && c.Checksum != "" && strings.EqualFold(sum, c.Checksum) {
				if held[i] == nil {
					held[i] = make(map[string]bool)
				}
				held[i][a.addr] = true
			}
		}
	}
	for i, c := range s.Chunks {
		if !c.Done {
			continue
		}
		for _, r := range c.Copies() {
			if !held[i][r.Worker] {
				s.dropReplica(i, r.Worker)
			}
		}
		if s.Chunks[i].Done {
			confirmed = append(confirmed, c.Index)
		} else {
			missing = append(missing, c.Index)
		}
	}
	return confirmed, missing
}

// removeStateTemps removes the temporary files of interrupted Saves of
// videoID, and its journal if its snapshot is gone (the journal belongs to
// no state then). Errors are ignored: a leftover is only clutter.
func removeStateTemps(dir, videoID string) {
	path := filepath.Join(dir, videoID+".json")
	for _, name := range []string{path, journalPath(path)} {
		matches, _ := filepath.Glob(filepath.Join(dir, fsutil.TempPrefix(filepath.Base(name))+"*"))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		os.Remove(journalPath(path))
	}
}
