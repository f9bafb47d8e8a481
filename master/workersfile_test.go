package master_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/videoshard/videoshard/master"
	pb "github.com/videoshard/videoshard/proto"
)

func TestParseWorkers(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		err      string // a part of the error; "" for none
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "a:1", want: []string{"a:1"}},
		{name: "no final newline", in: "a:1\nb:2", want: []string{"a:1", "b:2"}},
		{name: "comments and blank lines", in: "# the farm\n\na:1 # rack 1\n   \n#b:2\nc:3\n", want: []string{"a:1", "c:3"}},
		{name: "whitespace around", in: "  a:1\t\n\tb:2  \r\n", want: []string{"a:1", "b:2"}},
		{name: "duplicates once, first place kept", in: "a:1\nb:2\na:1\n", want: []string{"a:1", "b:2"}},
		{name: "ipv6", in: "[::1]:50061\n", want: []string{"[::1]:50061"}},
		{name: "two on a line", in: "a:1\nb:2 c:3\n", err: `line 2: "b:2 c:3"`},
		{name: "comma list", in: "a:1,b:2\n", err: `line 1: "a:1,b:2"`},
		{name: "no port", in: "a:1\n\nlocalhost\n", err: `line 3: "localhost"`},
		{name: "empty port", in: "a:\n", err: `line 1: "a:"`},
		{name: "port not a number", in: "a:http\n", err: `line 1: "a:http"`},
		{name: "port out of range", in: "a:65536\n", err: `line 1: "a:65536"`},
		{name: "port zero", in: "a:0\n", err: `line 1: "a:0"`},
		{name: "no host", in: ":50061\n", err: `line 1: ":50061"`},
		{name: "a scheme", in: "dns:///a:1\n", err: `line 1: "dns:///a:1"`},
		{name: "unbracketed ipv6", in: "::1:50061\n", err: `line 1: "::1:50061"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := master.ParseWorkers(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseWorkers(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseWorkers(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseWorkers_ErrTooLarge(t *testing.T) {
	big := strings.Repeat("# padding\n", 200_000) // 2 MB of comments
	if _, err := master.ParseWorkers(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a 2 MB workers file: %v, want refused", err)
	}
}

func TestReadWorkersFile_ErrNames(t *testing.T) {
	dir := t.TempDir()
	if _, err := master.ReadWorkersFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want not-exist", err)
	}
	path := filepath.Join(dir, "farm.txt")
	if err := os.WriteFile(path, []byte("a:1\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := master.ReadWorkersFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad file: %v, want an error naming %s and line 2", err, path)
	}
}

// A worker added while Run goes takes chunks: the first worker holds its
// first chunk until the added one has stored one, so the job can end only
// once the added worker worked.
func TestAddWorkers_JoinsARunningJob(t *testing.T) {
	second := make(chan struct{})
	var once sync.Once
	w2 := startWorker(t, workerOpts{Hooks: &hooks{Process: func(ctx context.Context, _ int, _ *pb.ProcessChunkRequest,
		next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
		resp, err := next()
		if err == nil {
			once.Do(func() { close(second) })
		}
		return resp, err
	}}})
	var d *master.Dispatcher
	added := make(chan error, 1)
	w1 := startWorker(t, workerOpts{Hooks: &hooks{Process: func(ctx context.Context, n int, _ *pb.ProcessChunkRequest,
		next func() (*pb.ProcessChunkResponse, error)) (*pb.ProcessChunkResponse, error) {
		if n == 1 {
			got, err := d.AddWorkers([]string{w2.Addr})
			if err == nil && !slices.Equal(got, []string{w2.Addr}) {
				err = fmt.Errorf("AddWorkers added %v, want %s", got, w2.Addr)
			}
			added <- err
			select {
			case <-second:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return next()
	}}})
	d = newDispatcher(t, fastConfig(t, w1.Addr))
	chunks := writeChunks(t, 6, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "vid", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	checkResults(t, chunks, rec.Results(), []string{w1.Addr, w2.Addr})
	if got := d.Stats()[w2.Addr]; got.Done == 0 || !got.Up {
		t.Fatalf("added worker: %+v, want up with chunks done", got)
	}
	if len(rec.Events(master.EventWorkerUp, w2.Addr)) != 1 {
		t.Fatalf("no worker-up event for the added worker: %+v", rec.Events(master.EventWorkerUp, ""))
	}
}

func TestAddWorkers_KnownIsANoOp(t *testing.T) {
	w1, w2 := startWorker(t, workerOpts{}), startWorker(t, workerOpts{})
	d := newDispatcher(t, fastConfig(t, w1.Addr))
	if got, err := d.AddWorkers([]string{w1.Addr, "", w1.Addr}); err != nil || len(got) != 0 {
		t.Fatalf("AddWorkers of the known worker = %v, %v; want nothing added", got, err)
	}
	if got, err := d.AddWorkers([]string{w2.Addr, w1.Addr, w2.Addr}); err != nil || !slices.Equal(got, []string{w2.Addr}) {
		t.Fatalf("AddWorkers = %v, %v; want %s once", got, err, w2.Addr)
	}
	if got, err := d.AddWorkers([]string{w2.Addr}); err != nil || len(got) != 0 {
		t.Fatalf("AddWorkers again = %v, %v; want nothing added", got, err)
	}
	if n := len(d.Stats()); n != 2 {
		t.Fatalf("%d workers, want 2: %+v", n, d.Stats())
	}
	if len(d.Clients()) != 2 {
		t.Fatalf("clients %v", d.Clients())
	}
}

// Workers added that never answer (nothing listening, a listener that
// says nothing) stay out of rotation; the job ends on the good one.
func TestAddWorkers_UnreachableDoesNotBreakTheJob(t *testing.T) {
	w1 := startWorker(t, workerOpts{MaxTasks: 2, Delay: 5 * time.Millisecond})
	d := newDispatcher(t, fastConfig(t, w1.Addr))
	dead, silent := closedPort(t), silentWorker(t)
	if got, err := d.AddWorkers([]string{dead, silent}); err != nil || len(got) != 2 {
		t.Fatalf("AddWorkers = %v, %v; want both added", got, err)
	}
	chunks := writeChunks(t, 8, smallChunk)
	rec := newRecorder(t)
	if err := d.Run(context.Background(), "vid", tasksOf(chunks), rec.onDone, rec.onEvent); err != nil {
		t.Fatal(err)
	}
	checkResults(t, chunks, rec.Results(), []string{w1.Addr})
	for _, a := range []string{dead, silent} {
		if s := d.Stats()[a]; s.Up || s.Probed || s.Done != 0 {
			t.Fatalf("%s: %+v, want out of rotation", a, s)
		}
	}
}

// AddWorkers after Close adds nothing.
func TestAddWorkers_AfterClose(t *testing.T) {
	w1, w2 := startWorker(t, workerOpts{}), startWorker(t, workerOpts{})
	d, err := master.NewDispatcher(context.Background(), fastConfig(t, w1.Addr))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if got, err := d.AddWorkers([]string{w2.Addr}); err != nil || len(got) != 0 {
		t.Fatalf("AddWorkers after Close = %v, %v; want nothing", got, err)
	}
}
