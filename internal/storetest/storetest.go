// Package storetest writes shard stores straight in package storage's
// on-disk layout, for tests and benchmarks that need many chunks: going
// through Pending.Commit (two fsyncs and renames per chunk) would take
// minutes for 100,000 of them.
package storetest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/videoshard/videoshard/storage"
)

// Layout is the shape of a store to write.
type Layout struct {
	Videos         int // videos, named by VideoID
	ChunksPerVideo int // chunks 0..ChunksPerVideo-1 of each
	ShardBytes     int // bytes per shard; 0 means 64
}

// VideoID is the id of video v in a store Write made; ids sort as v does.
func VideoID(v int) string { return fmt.Sprintf("video-%06d.mp4", v) }

// Write creates root (if missing) and writes l's videos into it: each
// chunk's shard and its metadata file, with every field an ffmpeg encode
// fills, as a worker that committed them would leave them (less the
// fsyncs). A store opened on root indexes every chunk. Videos are written
// in parallel, one goroutine per CPU. It returns the number of chunks
// written.
func Write(root string, l Layout) (int, error) {
	if l.ShardBytes <= 0 {
		l.ShardBytes = 64
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(abs, "metadata"), 0o755); err != nil {
		return 0, err
	}
	var next atomic.Int64
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				v := int(next.Add(1)) - 1
				if v >= l.Videos {
					return
				}
				if errs[w] = writeVideo(abs, v, l); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return l.Videos * l.ChunksPerVideo, nil
}

func writeVideo(root string, v int, l Layout) error {
	id := VideoID(v)
	vdir := filepath.Join(root, id)
	if err := os.Mkdir(vdir, 0o755); err != nil {
		return err
	}
	shard := make([]byte, l.ShardBytes)
	for c := range l.ChunksPerVideo {
		// Distinct contents, so checksums differ as real ones do.
		binary.LittleEndian.PutUint64(shard, uint64(v)<<32|uint64(c))
		sum := sha256.Sum256(shard)
		path := filepath.Join(vdir, fmt.Sprintf("chunk_%d.shard", c))
		if err := os.WriteFile(path, shard, 0o644); err != nil {
			return err
		}
		m := storage.Metadata{
			VideoID:             id,
			ChunkIndex:          c,
			OriginalSize:        4 * int64(l.ShardBytes),
			EncodedSize:         int64(l.ShardBytes),
			CompressionRatio:    0.25,
			WorkerID:            "127.0.0.1:50061",
			ShardLocation:       path,
			Timestamp:           "2026-01-02T03:04:05.000000Z",
			ChecksumSHA256:      hex.EncodeToString(sum[:]),
			InputChecksumSHA256: hex.EncodeToString(sum[:]),
			InputPrefixSHA256:   hex.EncodeToString(sum[:]),
			Encoder:             "ffmpeg",
			VideoCodec:          "libx264",
			AudioCodec:          "aac",
			Container:           "mp4",
			EncoderSettings:     map[string]string{"crf": "23", "preset": "medium", "threads": "0"},
			DurationSeconds:     4,
			FrameCount:          100,
			Width:               1280,
			Height:              720,
			EncodeTimeSeconds:   1.5,
		}
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s_chunk_%d_metadata.json", id, c)
		if err := os.WriteFile(filepath.Join(root, "metadata", name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
