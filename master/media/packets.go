package media

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"
	"golang.org/x/sync/errgroup"

	"github.com/videoshard/videoshard/internal/fftool"
)

// packetDigest is a video packet's size, keyframe flag and a hash of its
// bytes.
type packetDigest struct {
	size int64
	key  bool
	hash string
}

// videoPackets lists the digests of the first video stream's packets of
// path, in file order, with ffprobe (reading, not decoding).
func videoPackets(ctx context.Context, tools Tools, path string) ([]packetDigest, error) {
	args := append(ffmpeg.ConvertKwargsToCmdLineArgs(ffmpeg.KwArgs{
		"v":                  "error",
		"hide_banner":        "",
		"protocol_whitelist": "file",
		"format_whitelist":   shardFormats, // as Join reads them: a shard, or an output Join wrote
		"select_streams":     "v:0",
		"show_entries":       "packet=size,flags,data_hash",
		"show_data_hash":     "murmur3",
		"of":                 "csv=p=0",
	}), "file:"+path)
	var out digestWriter
	if err := fftool.Run(ctx, tools.FFprobeBin(), args, &out); err != nil {
		return nil, err
	}
	out.flush()
	return out.list, out.err
}

// digestWriter parses "1971,K_,murmur3:efa0..." lines as they stream.
type digestWriter struct {
	line []byte
	list []packetDigest
	err  error
}

func (w *digestWriter) Write(p []byte) (int, error) {
	splitLines(&w.line, p, w.parse)
	return len(p), nil
}

// flush parses a last line without its newline.
func (w *digestWriter) flush() {
	if len(w.line) > 0 {
		w.parse(w.line)
		w.line = w.line[:0]
	}
}

func (w *digestWriter) parse(b []byte) {
	line := strings.TrimSpace(string(b))
	if line == "" || w.err != nil {
		return
	}
	f := strings.Split(line, ",")
	var n int64
	var err error
	if len(f) == 3 {
		n, err = strconv.ParseInt(f[0], 10, 64)
	}
	if len(f) != 3 || err != nil {
		w.err = fmt.Errorf("ffprobe: unexpected packet line %q", line)
		return
	}
	w.list = append(w.list, packetDigest{size: n, key: strings.HasPrefix(f[1], "K"), hash: f[2]})
}

// SameShardPackets checks that the output's video is the shards' video,
// packet for packet, in order: what a stream-copy join must give. A
// keyframe may have grown (the concat demuxer puts the parameter sets in
// front of every IDR picture) but must stay a keyframe; every other packet
// must be byte-identical. So a shard lost, doubled or put in the wrong
// place by the join is caught without decoding anything.
func SameShardPackets(ctx context.Context, tools Tools, output string, shards []string) error {
	// The files are read side by side, a few at a time: each ffprobe run
	// is mostly its start-up.
	var out []packetDigest
	lists := make([][]packetDigest, len(shards))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(2, runtime.NumCPU()))
	g.Go(func() (err error) {
		if out, err = videoPackets(gctx, tools, output); err != nil {
			return fmt.Errorf("read the output's packets: %w", err)
		}
		return nil
	})
	for i, s := range shards {
		g.Go(func() (err error) {
			if lists[i], err = videoPackets(gctx, tools, s); err != nil {
				return fmt.Errorf("read shard %d's packets: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	at := 0
	for i, want := range lists {
		for j, p := range want {
			if at >= len(out) {
				return fmt.Errorf("the output's video ends inside chunk %d (packet %d of %d)", i, j, len(want))
			}
			got := out[at]
			if p.key && (!got.key || got.size < p.size) || !p.key && got != p {
				return fmt.Errorf("the output's video packet %d is not packet %d of chunk %d's shard", at, j, i)
			}
			at++
		}
	}
	if at != len(out) {
		return fmt.Errorf("the output has %d video packets, the shards %d", len(out), at)
	}
	return nil
}
