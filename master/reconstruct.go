package master

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/chunkid"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
)

// Reconstruct rebuilds a job's output from the shards its workers hold,
// without encoding anything: from the chunk map in cfg.StateDir, or, when
// there is none, from what cfg.Dispatch.Workers list for the video. With a
// chunk map whose input is still there unchanged, the source's audio and
// subtitles are muxed in and the output is verified against it; otherwise
// the output has the video alone and the summary says why it was not
// verified. Like Encode, it refuses an output that exists (unless Force)
// or that is the chunk map's input, before it dials a worker.
func Reconstruct(ctx context.Context, cfg JobConfig) (Summary, error) {
	start := time.Now()
	cfg = cfg.withDefaults()
	if err := chunkid.ValidateVideoID(cfg.VideoID); err != nil {
		return Summary{}, fmt.Errorf("--video-id: %w", err)
	}
	if _, err := media.ContainerFor(cfg.Output); err != nil {
		return Summary{}, err
	}
	state, err := LoadState(cfg.StateDir, cfg.VideoID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		state = nil
		if len(cfg.Dispatch.Workers) == 0 {
			path, _ := StatePath(cfg.StateDir, cfg.VideoID)
			return Summary{}, fmt.Errorf("no chunk map at %s: name the workers to ask with --workers", path)
		}
	case err != nil:
		return Summary{}, err
	}
	var input string
	if state != nil {
		input = state.Source
	}
	if err := checkOutputs(cfg, input); err != nil {
		return Summary{}, err
	}

	addrs := slices.Clone(cfg.Dispatch.Workers)
	if state != nil {
		for _, c := range state.Chunks {
			for _, r := range c.Copies() {
				addrs = append(addrs, r.Worker)
			}
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	clients := make(map[string]*client.Client, len(addrs))
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := cfg.Dispatch.Dial
	setDefaultValue(&dial.MaxMessageBytes, DefaultJobMessageBytes)
	for _, addr := range addrs {
		if addr == "" {
			continue
		}
		c, err := client.Dial(ctx, addr, dial)
		if err != nil {
			return Summary{}, fmt.Errorf("dial %s: %w", addr, err)
		}
		clients[addr] = c
	}

	var src *media.SourceInfo
	if state == nil {
		if state, err = stateFromWorkers(ctx, cfg.VideoID, clients); err != nil {
			return Summary{}, err
		}
	} else if fi, err := os.Stat(state.Source); err == nil && fi.Size() == state.SourceSize && fi.ModTime().Equal(state.SourceModTime) {
		// A chunk encoded again is cut and encoded as the job's were.
		cfg.SegmentSeconds, cfg.Dispatch.Encoding = state.SegmentSeconds, encodingOptions(state.Encoding)
		s, err := probeCached(ctx, cfg, state.Source, state)
		if err != nil {
			return Summary{}, err
		}
		src = &s
	}
	sum := Summary{VideoID: cfg.VideoID, Input: state.Source, Output: cfg.Output, Resumed: len(state.Chunks)}
	// Chunks lost or out of reach are encoded again when the input is
	// still there: on the workers given, or else those of the chunk map.
	var d *Dispatcher
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	dispatcher := func() (*Dispatcher, error) {
		if d != nil {
			return d, nil
		}
		dcfg := cfg.Dispatch
		if len(dcfg.Workers) == 0 {
			dcfg.Workers = slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == "" })
		}
		var err error
		d, err = NewDispatcher(ctx, dcfg)
		return d, err
	}
	if err := rebuild(ctx, cfg, state, src, clients, dispatcher, &sum); err != nil {
		if errors.Is(err, ErrVerification) {
			sum.Wall = time.Since(start)
			return sum, err // the summary says what failed
		}
		return Summary{}, err
	}
	unpinJob(ctx, cfg.Logger, clients, cfg.VideoID) // verified: the job's pins are done with
	sum.Wall = time.Since(start)
	sum.Speed = sum.MediaSeconds / sum.Wall.Seconds()
	return sum, nil
}

// stateFromWorkers builds a chunk map from what the workers hold for a
// video: every chunk from 0 to the last must be on one of them.
func stateFromWorkers(ctx context.Context, videoID string, clients map[string]*client.Client) (*JobState, error) {
	found := map[int]ChunkState{}
	addrs := make([]string, 0, len(clients))
	for addr := range clients {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs)
	for _, addr := range addrs {
		resp, err := clients[addr].Metadata(ctx, videoID)
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ask %s for %s: %w", addr, videoID, err)
		}
		for _, m := range resp.GetChunksMetadata() {
			i := int(m.GetChunkIndex())
			if _, dup := found[i]; dup {
				continue // the first worker in address order wins
			}
			found[i] = ChunkState{
				Index: i, Done: true, Worker: addr, Location: m.GetShardLocation(), Checksum: m.GetChecksumSha256(),
				Encoder: m.GetEncoder(), VideoCodec: m.GetVideoCodec(), EncodedSize: m.GetEncodedSize(),
				Frames: m.GetFrameCount(), Size: m.GetOriginalSize(),
			}
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no worker holds chunks of %s", videoID)
	}
	s := &JobState{Version: StateVersion, VideoID: videoID}
	for i := range len(found) {
		c, ok := found[i]
		if !ok {
			return nil, fmt.Errorf("the workers hold %d chunks of %s, but not chunk %d", len(found), videoID, i)
		}
		s.Chunks = append(s.Chunks, c)
	}
	return s, nil
}
