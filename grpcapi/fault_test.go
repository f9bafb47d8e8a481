package grpcapi

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// faultFS fails one kind of operation of the write path once armed.
type faultFS struct {
	storage.OSFS
	fail atomic.Value // string: "write", "sync", "rename"; "" when disarmed
	err  error
}

func (f *faultFS) armed(op string) bool { v, _ := f.fail.Load().(string); return v == op }

func (f *faultFS) CreateTemp(dir *storage.Dir, pattern string) (storage.File, error) {
	file, err := f.OSFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Rename(olddir *storage.Dir, oldname string, newdir *storage.Dir, newname string) error {
	if f.armed("rename") {
		return &os.LinkError{Op: "rename", Old: filepath.Join(olddir.Path(), oldname),
			New: filepath.Join(newdir.Path(), newname), Err: f.err}
	}
	return f.OSFS.Rename(olddir, oldname, newdir, newname)
}

type faultFile struct {
	storage.File
	fs *faultFS
}

func (f *faultFile) Write(b []byte) (int, error) {
	if f.fs.armed("write") {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: f.fs.err}
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	if f.fs.armed("sync") {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: f.fs.err}
	}
	return f.File.Sync()
}

// Every failure of the write path answers with a clear status and leaves
// the chunk's previous version intact and served.
func TestWriteFaults(t *testing.T) {
	tests := []struct {
		op      string
		err     error
		want    codes.Code
		message string
	}{
		{"write", syscall.ENOSPC, codes.ResourceExhausted, "no space left on device"},
		{"write", syscall.EIO, codes.Internal, "input/output error"},
		{"sync", syscall.EIO, codes.Internal, "fsync"},
		{"rename", syscall.EIO, codes.Internal, "rename"},
		{"rename", syscall.ENOSPC, codes.ResourceExhausted, "no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.op+"/"+tt.err.Error(), func(t *testing.T) {
			fsys := &faultFS{err: tt.err}
			fsys.fail.Store("")
			h := newHarnessFS(t, fsys, &fakeEncoder{}, Config{})
			ctx := context.Background()
			old := []byte("the committed version of chunk 0")
			first, err := h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: old})
			if err != nil {
				t.Fatal(err)
			}
			fsys.fail.Store(tt.op)
			_, err = h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: []byte("a new version that fails")})
			if status.Code(err) != tt.want || !strings.Contains(status.Convert(err).Message(), tt.message) {
				t.Fatalf("got %v, want %v mentioning %q", err, tt.want, tt.message)
			}
			fsys.fail.Store("")
			got, err := h.client.GetShard(ctx, &pb.GetShardRequest{ShardLocation: first.GetShardLocation()})
			if err != nil || !bytes.Equal(got.GetShardData(), old) {
				t.Fatalf("previous version after the failure: %q, %v", got.GetShardData(), err)
			}
			var temps []string
			filepath.WalkDir(h.store.Root(), func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".tmp-") {
					temps = append(temps, path)
				}
				return nil
			})
			if len(temps) > 0 {
				t.Fatalf("temp files left: %v", temps)
			}
		})
	}
}
