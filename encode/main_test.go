package encode_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestMain refuses to run without ffmpeg and ffprobe: these tests run in CI
// where both are installed, and a silent skip would hide a broken setup.
func TestMain(m *testing.M) {
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			fmt.Fprintf(os.Stderr, "encode tests need %s in PATH (they fail rather than skip): %v\n", bin, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// testdata returns the path of a committed sample clip.
func testdata(name string) string {
	return filepath.Join("..", "testdata", name)
}

// fileOutput is a minimal encode.Output: a temporary file with no
// extension, like the worker's. It counts how it is used.
type fileOutput struct {
	f      *os.File
	writes atomic.Int64
	paths  atomic.Int64
}

func newFileOutput(tb testing.TB) *fileOutput {
	tb.Helper()
	f, err := os.Create(filepath.Join(tb.TempDir(), "out"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return &fileOutput{f: f}
}

func (o *fileOutput) Write(p []byte) (int, error) {
	o.writes.Add(1)
	return o.f.Write(p)
}

func (o *fileOutput) Path() string {
	o.paths.Add(1)
	return o.f.Name()
}

// bytes returns what the file holds now, however it was written.
func (o *fileOutput) bytes(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(o.f.Name())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// discardOutput is an Output that drops everything, for benchmarks.
type discardOutput struct{}

func (discardOutput) Write(p []byte) (int, error) { return len(p), nil }
func (discardOutput) Path() string                { return os.DevNull }

// openFile opens path for reading and closes it at the end of the test.
func openFile(tb testing.TB, path string) *os.File {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// assertEmptyDir fails unless dir has no entries.
func assertEmptyDir(tb testing.TB, dir string) {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		tb.Errorf("%s: leftover %s", dir, e.Name())
	}
}
