package media

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/videoshard/videoshard/internal/framehash"
	"github.com/videoshard/videoshard/internal/fsutil"
)

// A resumed job should cost the work that is left, not its preamble
// again: what Probe learnt of a source (its ground truth, every picture's
// hash, included) and what Split made of it are kept in files, and read
// back while the source and the split's inputs are what they were.

// cacheVersion is the format of the files SaveSource and SaveSplit write.
const cacheVersion = 6 // 2: the key is written first, on its own; 3: SourceInfo.Warnings; 4: untimed lossless chunks numbered by the decoder; 5: pictures as the decoder times them, chunks' SourceTB; 6: the pictures' field modes

// ErrStale: a cache file does not describe the current source or split,
// or does not exist. The caller probes or splits again.
var ErrStale = errors.New("cache does not match")

// SourceKey identifies a source's content for the caches: its path, size
// and modification time, as the job's chunk map identifies it.
type SourceKey struct {
	Path    string
	Size    int64
	ModTime time.Time
}

// KeyOf is the SourceKey of the file at path now.
func KeyOf(path string) (SourceKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return SourceKey{}, err
	}
	return SourceKey{Path: path, Size: fi.Size(), ModTime: fi.ModTime().UTC()}, nil
}

type cachedPicture struct {
	PTS, Dur int64
	Hash     framehash.Hash
}

// sourceHeader leads a source cache file, so that whether the file is
// the current source's can be told without reading the pictures.
type sourceHeader struct {
	Version int
	Key     SourceKey
}

// same reports whether k and o name the same content.
func (k SourceKey) same(o SourceKey) bool {
	return k.Path == o.Path && k.Size == o.Size && k.ModTime.Equal(o.ModTime)
}

type cachedSource struct {
	Info SourceInfo
	// The ground truth: Probe's packet and picture scans, what Split and
	// Verify use of them.
	PacketTimeBase, PictureTimeBase [2]int64
	PTS, Pos                        []int64
	Keys                            [][2]int64
	Pictures                        []cachedPicture
	// Fields are the pictures' field mode runs: mode, first picture.
	Fields [][2]int
}

// SaveSource writes src, as Probe made it, to path (atomically), under key.
func SaveSource(path string, key SourceKey, src SourceInfo) error {
	if src.packets == nil || src.pictures == nil {
		return errors.New("save source: it was not made by Probe")
	}
	c := cachedSource{Info: src,
		PacketTimeBase:  [2]int64{src.packets.timeBase.num, src.packets.timeBase.den},
		PictureTimeBase: [2]int64{src.pictures.timeBase.num, src.pictures.timeBase.den},
		PTS:             src.packets.pts, Pos: src.packets.pos, Pictures: toCached(src.pictures.pictures),
	}
	for _, k := range src.packets.keys {
		c.Keys = append(c.Keys, [2]int64{k.packet, k.pts})
	}
	for _, r := range src.pictures.log.fields {
		c.Fields = append(c.Fields, [2]int{int(r.fields), r.index})
	}
	return saveGob(path, sourceHeader{Version: cacheVersion, Key: key}, &c)
}

// SourceKept reports whether path holds what SaveSource wrote under key;
// it reads the file's header only.
func SourceKept(path string, key SourceKey) bool {
	var h sourceHeader
	return loadGob(path, &h) == nil && h.Version == cacheVersion && h.Key.same(key)
}

// LoadSource reads what SaveSource wrote at path, if it was saved under
// key; otherwise the error wraps ErrStale.
func LoadSource(path string, key SourceKey) (SourceInfo, error) {
	var h sourceHeader
	var c cachedSource
	if err := loadGob(path, &h); err != nil {
		return SourceInfo{}, err
	}
	if h.Version != cacheVersion || !h.Key.same(key) {
		return SourceInfo{}, fmt.Errorf("%w: %s is of another source or version", ErrStale, path)
	}
	if err := loadGob(path, &h, &c); err != nil {
		return SourceInfo{}, err
	}
	src := c.Info
	src.packets = &packetScan{timeBase: rational{c.PacketTimeBase[0], c.PacketTimeBase[1]}, pts: c.PTS, pos: c.Pos,
		packets: src.Video.Packets, keyframes: len(c.Keys), what: scanKeys | scanPTS}
	for _, k := range c.Keys {
		src.packets.keys = append(src.packets.keys, keyframe{packet: k[0], pts: k[1]})
	}
	src.pictures = &pictureScan{timeBase: rational{c.PictureTimeBase[0], c.PictureTimeBase[1]}, pictures: fromCached(c.Pictures)}
	for _, r := range c.Fields {
		src.pictures.log.fields = append(src.pictures.log.fields, fieldRun{byte(r[0]), r[1]})
	}
	return src, nil
}

// SplitKey is what a split depends on besides its source.
type SplitKey struct {
	Source         SourceKey
	SegmentSeconds float64
	HeadProof      bool
}

type cachedChunk struct {
	Chunk
	Source    []cachedPicture
	SourceTB  [2]int64
	HeadLimit int
	ModTime   time.Time // the chunk file's, when it was saved
}

type cachedSplit struct {
	Version int
	Key     SplitKey
	Chunks  []cachedChunk
}

// SaveSplit writes chunks, as Split (and Reprove) left them, to path
// (atomically), under key.
func SaveSplit(path string, key SplitKey, chunks []Chunk) error {
	c := cachedSplit{Version: cacheVersion, Key: key}
	for _, ch := range chunks {
		fi, err := os.Stat(ch.Path)
		if err != nil {
			return fmt.Errorf("save split: %w", err)
		}
		c.Chunks = append(c.Chunks, cachedChunk{Chunk: ch, Source: toCached(ch.source), SourceTB: [2]int64{ch.sourceTB.num, ch.sourceTB.den}, HeadLimit: ch.headLimit, ModTime: fi.ModTime().UTC()})
	}
	return saveGob(path, &c)
}

// LoadSplit reads what SaveSplit wrote at path, if it was saved under key
// and every chunk file is still there as it was (size and modification
// time); otherwise the error wraps ErrStale.
func LoadSplit(path string, key SplitKey) ([]Chunk, error) {
	var c cachedSplit
	if err := loadGob(path, &c); err != nil {
		return nil, err
	}
	k := c.Key
	if c.Version != cacheVersion || k.SegmentSeconds != key.SegmentSeconds || k.HeadProof != key.HeadProof || !k.Source.same(key.Source) {
		return nil, fmt.Errorf("%w: %s is of another split", ErrStale, path)
	}
	chunks := make([]Chunk, len(c.Chunks))
	for i, cc := range c.Chunks {
		fi, err := os.Stat(cc.Path)
		if err != nil || fi.Size() != cc.Size || !fi.ModTime().UTC().Equal(cc.ModTime) || cc.Index != i {
			return nil, fmt.Errorf("%w: chunk %d's file is not as it was split", ErrStale, i)
		}
		chunks[i] = cc.Chunk
		chunks[i].source, chunks[i].headLimit = fromCached(cc.Source), cc.HeadLimit
		chunks[i].sourceTB = rational{cc.SourceTB[0], cc.SourceTB[1]}
	}
	return chunks, nil
}

func toCached(pics []picture) []cachedPicture {
	out := make([]cachedPicture, len(pics))
	for i, p := range pics {
		out[i] = cachedPicture{p.pts, p.dur, p.hash}
	}
	return out
}

func fromCached(pics []cachedPicture) []picture {
	out := make([]picture, len(pics))
	for i, p := range pics {
		out[i] = picture{p.PTS, p.Dur, p.Hash}
	}
	return out
}

// saveGob writes vs to path, one gob value after another, atomically.
func saveGob(path string, vs ...any) error {
	return fsutil.WriteFileAtomic(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := gob.NewEncoder(bw)
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

// loadGob decodes the first len(vs) values of path into vs; a missing or
// undecodable file wraps ErrStale (it is a cache: the caller makes it
// again).
func loadGob(path string, vs ...any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReader(f))
	for _, v := range vs {
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrStale, path, err)
		}
	}
	return nil
}
