package grpcapi

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// ListShards lists committed shards, videos and chunks sorted, whole (no
// page_size: what the original worker did, within the message limit) or a
// page at a time.
func (s *Server) ListShards(ctx context.Context, req *pb.ListShardsRequest) (*pb.ListShardsResponse, error) {
	video := req.GetVideoId()
	if video != "" {
		if err := storage.ValidateVideoID(video); err != nil {
			return nil, toStatus(err)
		}
	}
	size := req.GetPageSize()
	if size < 0 {
		return nil, toStatus(invalidf("page_size %d is negative: 0 lists everything, 1 to %d a page of that many chunks",
			size, maxListPage))
	}
	filter, err := listFilter(req)
	if err != nil {
		return nil, toStatus(err)
	}
	after, err := parsePageToken(req.GetPageToken(), video, filter)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.ListShardsResponse{Success: true, WorkerId: s.cfg.WorkerID}
	l := &listing{budget: s.cfg.MaxMessageBytes - listHeadroom - len(s.cfg.WorkerID)}
	q := storage.PageOptions{VideoID: video, After: after, Brief: true, Filter: filter}
	if size == 0 {
		err = s.listAll(ctx, q, l)
	} else {
		q.Limit = min(int(size), maxListPage)
		resp.NextPageToken, err = s.listPage(q, l)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	resp.Videos = l.videos
	resp.Message = fmt.Sprintf("%d videos, %d chunks", len(l.videos), l.chunks)
	if resp.NextPageToken != "" {
		resp.Message += " on this page; more follow"
	}
	return resp, nil
}

const (
	// maxListPage is the most chunks a ListShards page holds (a larger
	// page_size is taken as this): at about 120 bytes a chunk, some
	// 600 KB, within every client's default message limit.
	maxListPage = 5000
	// listHeadroom is what a ListShardsResponse needs beside its videos
	// and worker id: success, message, next_page_token.
	listHeadroom = 1 << 10
)

// maxFilterLen bounds the video_codec and encoder filters: the names are
// short.
const maxFilterLen = 256

// listFilter is the filters a ListShards request sets.
func listFilter(req *pb.ListShardsRequest) (storage.Filter, error) {
	f := storage.Filter{VideoCodec: req.GetVideoCodec(), Encoder: req.GetEncoder()}
	for _, v := range []struct{ name, val string }{{"video_codec", f.VideoCodec}, {"encoder", f.Encoder}} {
		if len(v.val) > maxFilterLen || !utf8.ValidString(v.val) || strings.ContainsRune(v.val, 0) {
			return f, invalidf("%s filter is not a codec or encoder name (UTF-8, no NUL, at most %d bytes)", v.name, maxFilterLen)
		}
	}
	for _, v := range []struct {
		name string
		sec  int64
		to   *time.Time
	}{{"processed_after", req.GetProcessedAfter(), &f.ProcessedAfter}, {"processed_before", req.GetProcessedBefore(), &f.ProcessedBefore}} {
		switch {
		case v.sec < 0:
			return f, invalidf("%s %d is negative: Unix seconds, or 0 for no bound", v.name, v.sec)
		case v.sec > maxFilterSeconds:
			return f, invalidf("%s %d is past the year 2262: Unix seconds, not milliseconds", v.name, v.sec)
		case v.sec > 0:
			*v.to = time.Unix(v.sec, 0)
		}
	}
	return f, nil
}

// maxFilterSeconds is the last second the store's nanosecond times reach.
const maxFilterSeconds = math.MaxInt64 / int64(time.Second)

// listPage fills l with at most q.Limit chunks after q.After (nil: from
// the first), fewer if the message limit says so, and returns the token of
// the next page ("" if this is the last).
func (s *Server) listPage(q storage.PageOptions, l *listing) (string, error) {
	page, err := s.store.ListPage(q)
	if err != nil {
		return "", err
	}
	more := page.More
	for _, v := range page.Videos {
		for _, c := range v.Chunks {
			if !l.add(v.ID, toProtoChunkInfo(c)) {
				more = true
				break
			}
		}
	}
	if !more {
		return "", nil
	}
	last, ok := l.last()
	if !ok {
		return "", fmt.Errorf("list shards: %w: one chunk's entry exceeds the %d-byte message limit", errTooLarge, s.cfg.MaxMessageBytes)
	}
	return pageToken(q.VideoID, q.Filter, last), nil
}

// listBatch is the chunks listAll takes from the store at a time, so that
// a listing too large to send is refused having copied little more than
// the limit.
const listBatch = maxListPage

// listAll fills l with every chunk after after, as one response for a
// client that does not page, or fails with errTooLarge if that would exceed
// the message limit: truncating would make such a client believe it had
// everything. The store is read in batches, each after the last chunk of
// the one before, so chunks committed or removed meanwhile are listed at
// most once, as a paging client sees them.
func (s *Server) listAll(ctx context.Context, q storage.PageOptions, l *listing) error {
	q.Limit = listBatch
	for {
		page, err := s.store.ListPage(q)
		if err != nil {
			return err
		}
		for _, v := range page.Videos {
			for _, c := range v.Chunks {
				if !l.add(v.ID, toProtoChunkInfo(c)) {
					return fmt.Errorf("list shards: %w: the listing exceeds the worker's %d-byte message limit "+
						"(grpc.max_message_bytes); send page_size (1 to %d chunks a page) and follow next_page_token",
						errTooLarge, s.cfg.MaxMessageBytes, maxListPage)
				}
			}
		}
		last, ok := page.Last()
		if !page.More || !ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list shards: %w", err)
		}
		q.After = &last
	}
}

// listing is a ListShardsResponse's videos as they are added, with their
// exact encoded size.
type listing struct {
	videos []*pb.VideoInfo
	chunks int
	budget int // the most bytes the videos may take
	bytes  int // what they take, as fields of the response
	body   int // the last video's encoded size, without its tag and length
}

// add appends chunk c of video id (after every chunk added so far), unless
// the videos would then take more than the budget.
func (l *listing) add(id string, c *pb.ChunkInfo) bool {
	var v *pb.VideoInfo
	if n := len(l.videos); n > 0 && l.videos[n-1].GetVideoId() == id {
		v = l.videos[n-1]
	}
	body, bytes := l.body, l.bytes
	if v == nil {
		body = fieldSize(len(id))
	} else {
		bytes -= fieldSize(body)
	}
	body += fieldSize(proto.Size(c))
	bytes += fieldSize(body)
	if bytes > l.budget {
		return false
	}
	if v == nil {
		v = &pb.VideoInfo{VideoId: id}
		l.videos = append(l.videos, v)
	}
	v.Chunks = append(v.Chunks, c)
	l.chunks++
	l.body, l.bytes = body, bytes
	return true
}

// last is the last chunk added.
func (l *listing) last() (storage.ChunkRef, bool) {
	if len(l.videos) == 0 {
		return storage.ChunkRef{}, false
	}
	v := l.videos[len(l.videos)-1]
	return storage.ChunkRef{VideoID: v.GetVideoId(), ChunkIndex: int(v.Chunks[len(v.Chunks)-1].GetChunkIndex())}, true
}

// fieldSize is the encoded size of a length-delimited field numbered below
// 16 whose content takes n bytes.
func fieldSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// GetVideoMetadata returns every chunk's metadata for one video.
func (s *Server) GetVideoMetadata(ctx context.Context, req *pb.GetVideoMetadataRequest) (*pb.GetVideoMetadataResponse, error) {
	if err := storage.ValidateVideoID(req.GetVideoId()); err != nil {
		return nil, toStatus(err)
	}
	metas, err := s.store.VideoMetadata(req.GetVideoId())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.GetVideoMetadataResponse{
		Success:  true,
		WorkerId: s.cfg.WorkerID,
		Message:  fmt.Sprintf("%d chunks", len(metas)),
	}
	for _, m := range metas {
		resp.ChunksMetadata = append(resp.ChunksMetadata, toProtoMetadata(m))
	}
	// The answer has no pages: one too large for a message would be
	// refused by gRPC with a bare size error.
	if n := proto.Size(resp); n > s.cfg.MaxMessageBytes {
		return nil, toStatus(fmt.Errorf("%w: the metadata of video %s's %d chunks is %d bytes, over the %d-byte message limit: list them with ListShards, which pages",
			errTooLarge, req.GetVideoId(), len(metas), n, s.cfg.MaxMessageBytes))
	}
	return resp, nil
}
