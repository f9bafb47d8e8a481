package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/videoshard/videoshard/internal/wirecodec"
	pb "github.com/videoshard/videoshard/proto"
)

// Sizes the client works with.
const (
	// DefaultMaxMessageBytes is the largest message the client sends or
	// receives when DialOptions.MaxMessageBytes is 0. It is above the
	// worker's default (pb.DefaultMaxMessageBytes), so a worker configured
	// higher is still read whole: the worker's own limit, which it
	// reports, is what bounds a unary chunk.
	DefaultMaxMessageBytes = 256 << 20

	// MinMaxMessageBytes is the smallest DialOptions.MaxMessageBytes.
	MinMaxMessageBytes = 2 * pb.MessageHeadroom

	// DefaultUnaryLimit is the largest chunk sent with unary ProcessChunk
	// when the worker does not report max_unary_chunk_bytes (the original
	// worker kept gRPC's 4 MiB default receive limit).
	DefaultUnaryLimit = pb.LegacyMaxMessageBytes - pb.MessageHeadroom

	// FrameBytes is the size of each data frame of a streamed upload,
	// unless the unary limit is smaller.
	FrameBytes = 1 << 20

	// DefaultMasterID is sent as master_id in health checks when
	// DialOptions.MasterID is empty.
	DefaultMasterID = "videoshard-master"
)

// HasFeature reports whether a health answer lists the named feature.
func HasFeature(h *pb.HealthCheckResponse, name string) bool {
	return slices.Contains(h.GetFeatures(), name)
}

// Errors the client detects itself. They come wrapped with the call they
// belong to; test them with errors.Is.
var (
	// ErrChecksumMismatch: a downloaded shard's SHA-256 differs from the
	// checksum_sha256 in its metadata (or the metadata carries none).
	ErrChecksumMismatch = errors.New("checksum mismatch")

	// ErrSizeMismatch: a downloaded shard's length differs from the
	// encoded_size in its metadata.
	ErrSizeMismatch = errors.New("size mismatch")

	// ErrProtocol: the worker broke the streaming protocol, for example a
	// DownloadShard stream whose first message carries no metadata.
	ErrProtocol = errors.New("protocol violation")

	// ErrRejected: the worker answered without a gRPC error but with
	// success=false, the way the original worker reported failures.
	ErrRejected = errors.New("worker reported failure")

	// ErrFileChanged: the file given to ProcessFile changed size while it
	// was being sent.
	ErrFileChanged = errors.New("file changed while sending")
)

// DialOptions configures Dial. The zero value dials with TLS verified
// against the system's root certificates; see Insecure.
type DialOptions struct {
	// Insecure dials in plaintext, for workers without tls.cert_file. It
	// cannot be combined with the TLS fields below. False dials TLS (1.2 at
	// least), unless GRPCOptions carries other credentials.
	Insecure bool

	// CAFile is a PEM file of the certificate authorities that sign the
	// workers' certificates; empty trusts the system's roots.
	CAFile string

	// CertFile and KeyFile are the PEM client certificate and key presented
	// to workers that require mutual TLS (tls.client_ca_file); both or
	// neither.
	CertFile, KeyFile string

	// ServerName is the name the worker's certificate must carry; empty
	// means the host of the address Dial was given.
	ServerName string

	// Token, when not empty, is sent with every call as the metadata
	// "authorization: Bearer <token>" (the workers' auth.tokens). With TLS
	// it is only ever sent over TLS. With Insecure it is sent in clear text:
	// fine on loopback, readable by anyone on the path anywhere else.
	Token string

	// MaxMessageBytes bounds every single message the client sends or
	// receives. 0 means DefaultMaxMessageBytes; other values under
	// MinMaxMessageBytes are refused. A chunk is sent with unary
	// ProcessChunk only if it also fits in this limit minus pb.MessageHeadroom.
	MaxMessageBytes int

	// MasterID is sent as master_id in health checks; empty means
	// DefaultMasterID.
	MasterID string

	// DownloadIdleTimeout is how long a shard download may go without a
	// message before it is abandoned (a worker that stalls, or vanished
	// without the connection noticing); 0 means DefaultDownloadIdleTimeout.
	DownloadIdleTimeout time.Duration

	// GRPCOptions are appended to the options Dial builds, so they win:
	// a custom dialer, interceptors, transport credentials.
	GRPCOptions []grpc.DialOption
}

// Client talks to one worker. It is safe for concurrent use.
type Client struct {
	conn     *grpc.ClientConn
	rpc      pb.VideoProcessingServiceClient
	maxMsg   int
	masterID string
	idle     time.Duration // DialOptions.DownloadIdleTimeout, default filled in
	codec    wirecodec.Codec

	mu         sync.Mutex // guards unaryLimit
	unaryLimit int64      // learnt from the first health check; 0: not yet
}

// Dial returns a Client for the worker at addr (HOST:PORT, or any gRPC
// target). The connection is made lazily: an unreachable worker shows up as
// an Unavailable error from the first call, not here. Dial fails only on a
// bad address or options, or when ctx is already done.
func Dial(ctx context.Context, addr string, opts DialOptions) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if addr == "" {
		return nil, errors.New("dial: empty worker address")
	}
	maxMsg := opts.MaxMessageBytes
	if maxMsg == 0 {
		maxMsg = DefaultMaxMessageBytes
	}
	if maxMsg < MinMaxMessageBytes {
		return nil, fmt.Errorf("dial %s: MaxMessageBytes %d is under the minimum %d", addr, maxMsg, MinMaxMessageBytes)
	}
	masterID := opts.MasterID
	if masterID == "" {
		masterID = DefaultMasterID
	}
	idle := opts.DownloadIdleTimeout
	if idle == 0 {
		idle = DefaultDownloadIdleTimeout
	}
	if idle < 0 {
		return nil, fmt.Errorf("dial %s: DownloadIdleTimeout %v is negative", addr, idle)
	}

	creds, err := opts.transportCredentials()
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	codec := wirecodec.New()
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(cleanUnary),
		grpc.WithChainStreamInterceptor(cleanStream),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(codec),
			grpc.MaxCallRecvMsgSize(maxMsg),
			grpc.MaxCallSendMsgSize(maxMsg),
		),
		grpc.WithInitialWindowSize(streamWindowBytes),
		grpc.WithInitialConnWindowSize(connWindowBytes),
		grpc.WithReadBufferSize(readBufferBytes),
	}
	if opts.Token != "" {
		if err := pb.CheckBearerToken(opts.Token); err != nil {
			return nil, fmt.Errorf("dial %s: token: %w", addr, err)
		}
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearerToken{token: opts.Token, tls: !opts.Insecure}))
	}
	dialOpts = append(dialOpts, opts.GRPCOptions...)

	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &Client{
		conn:     conn,
		rpc:      pb.NewVideoProcessingServiceClient(conn),
		maxMsg:   maxMsg,
		idle:     idle,
		codec:    codec,
		masterID: masterID,
	}, nil
}

// The flow control of a bulk receiver: gRPC's defaults (a 64 KiB window
// grown by its BDP estimate, 32 KiB reads) make a client that hashes and
// writes a shard as it downloads it wait on the worker. A download buffers
// at most streamWindowBytes unread, a connection connWindowBytes.
const (
	streamWindowBytes = 16 << 20
	connWindowBytes   = 32 << 20
	readBufferBytes   = 1 << 20
)

// Close closes the connection; calls in flight fail with Canceled.
func (c *Client) Close() error {
	return c.conn.Close()
}

// Health asks the worker how it is. An unhealthy worker is an answer, not
// an error: check is_healthy and message.
func (c *Client) Health(ctx context.Context) (*pb.HealthCheckResponse, error) {
	resp, err := c.rpc.CheckHealth(ctx, &pb.HealthCheckRequest{MasterId: c.masterID})
	if err != nil {
		return nil, fmt.Errorf("check health: %w", err)
	}
	return resp, nil
}

// maxListChunks bounds the chunks List gathers from one worker: ten times
// the largest store measured (one million chunks, BenchmarkStore1M).
const maxListChunks = 10_000_000

// listPageSize is the chunks List asks a worker for at a time: a whole
// listing can exceed one message, which a worker then refuses to send.
const listPageSize = 1000

// List returns the worker's stored shards, for one video or, with an empty
// videoID, for all of them, as one response: it pages through the listing
// and merges the pages (a worker that does not page answers everything at
// once). The worker lists an unknown video as empty.
func (c *Client) List(ctx context.Context, videoID string) (*pb.ListShardsResponse, error) {
	req := &pb.ListShardsRequest{VideoId: videoID, PageSize: listPageSize}
	var all *pb.ListShardsResponse
	seen := map[string]bool{} // the page tokens followed
	chunks := 0
	for pages := 1; ; pages++ {
		resp, err := c.rpc.ListShards(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		if !resp.GetSuccess() {
			return nil, fmt.Errorf("list shards: %w: %s", ErrRejected, resp.GetMessage())
		}
		if all == nil {
			all = resp
		} else {
			all.Videos = mergeVideos(all.Videos, resp.GetVideos())
		}
		for _, v := range resp.GetVideos() {
			chunks += len(v.GetChunks())
		}
		next := resp.GetNextPageToken()
		if next == "" {
			if pages > 1 {
				all.Message = fmt.Sprintf("%d videos, %d chunks", len(all.Videos), chunks)
			}
			all.NextPageToken = ""
			return all, nil
		}
		// A page that says more follow must move on, to a page not seen
		// before, and the whole must stay within reason, or a broken
		// worker would keep the client listing (and growing) for ever.
		switch {
		case len(resp.GetVideos()) == 0 || next == req.GetPageToken() || seen[next]:
			return nil, fmt.Errorf("list shards: %w: page %d holds nothing new, or names a page already listed, as the next", ErrProtocol, pages)
		case chunks > maxListChunks:
			return nil, fmt.Errorf("list shards: %w: more than %d chunks listed", ErrProtocol, maxListChunks)
		}
		seen[next] = true
		req.PageToken = next
	}
}

// mergeVideos appends page to videos; a video cut between pages becomes
// one again.
func mergeVideos(videos, page []*pb.VideoInfo) []*pb.VideoInfo {
	for _, v := range page {
		if n := len(videos); n > 0 && videos[n-1].GetVideoId() == v.GetVideoId() {
			videos[n-1].Chunks = append(videos[n-1].Chunks, v.GetChunks()...)
			continue
		}
		videos = append(videos, v)
	}
	return videos
}

// Metadata returns the metadata of every stored chunk of a video. A video
// with no chunks is NotFound.
func (c *Client) Metadata(ctx context.Context, videoID string) (*pb.GetVideoMetadataResponse, error) {
	resp, err := c.rpc.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: videoID})
	if err != nil {
		return nil, fmt.Errorf("video metadata %q: %w", videoID, err)
	}
	if !resp.GetSuccess() {
		return nil, fmt.Errorf("video metadata %q: %w: %s", videoID, ErrRejected, resp.GetMessage())
	}
	return resp, nil
}

// ResetConnectBackoff makes the connection try again now if it is waiting
// out a backoff after a failure, so a probe does not fail at once.
func (c *Client) ResetConnectBackoff() { c.conn.ResetConnectBackoff() }

// DeleteShard removes one chunk from the worker. A chunk the worker does
// not hold is no error: the response says deleted false.
func (c *Client) DeleteShard(ctx context.Context, videoID string, chunkIndex int32) (*pb.DeleteShardResponse, error) {
	resp, err := c.rpc.DeleteShard(ctx, &pb.DeleteShardRequest{VideoId: videoID, ChunkIndex: chunkIndex})
	if err != nil {
		return nil, fmt.Errorf("delete %s chunk %d: %w", videoID, chunkIndex, err)
	}
	if !resp.GetSuccess() {
		return nil, fmt.Errorf("delete %s chunk %d: %w: %s", videoID, chunkIndex, ErrRejected, resp.GetMessage())
	}
	return resp, nil
}

// DeleteVideo removes every chunk of a video from the worker.
func (c *Client) DeleteVideo(ctx context.Context, videoID string) (*pb.DeleteVideoResponse, error) {
	resp, err := c.rpc.DeleteVideo(ctx, &pb.DeleteVideoRequest{VideoId: videoID})
	if err != nil {
		return nil, fmt.Errorf("delete video %s: %w", videoID, err)
	}
	if !resp.GetSuccess() {
		return nil, fmt.Errorf("delete video %s: %w: %s", videoID, ErrRejected, resp.GetMessage())
	}
	return resp, nil
}

// Pin keeps a video's chunks on the worker from eviction until Unpin.
func (c *Client) Pin(ctx context.Context, videoID string) error {
	return c.pin(ctx, c.rpc.PinVideo, "pin", videoID)
}

// Unpin makes a video's chunks on the worker evictable again.
func (c *Client) Unpin(ctx context.Context, videoID string) error {
	return c.pin(ctx, c.rpc.UnpinVideo, "unpin", videoID)
}

func (c *Client) pin(ctx context.Context, call func(context.Context, *pb.PinVideoRequest, ...grpc.CallOption) (*pb.PinVideoResponse, error), verb, videoID string) error {
	resp, err := call(ctx, &pb.PinVideoRequest{VideoId: videoID})
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, videoID, err)
	}
	if !resp.GetSuccess() {
		return fmt.Errorf("%s %s: %w: %s", verb, videoID, ErrRejected, resp.GetMessage())
	}
	return nil
}

// ReplicateShard asks this worker (the target) to copy a chunk from the
// worker at source, peer to peer: the bytes never pass through the
// master. It returns the copy's metadata as the target stored it, and
// whether the target held it already. The metadata is checked to be the
// chunk asked for (ErrProtocol otherwise); whether its checksum is the
// right one is the caller's to check.
// TransferTimeout is how long a copy of size bytes the worker makes (a
// ReplicateShard) may take, as a download of it may: DownloadIdleTimeout
// plus its size at MinDownloadRate. A worker that takes the call and never
// answers holds it no longer.
func (c *Client) TransferTimeout(size int64) time.Duration {
	return c.idle + time.Duration(max(size, 0)/MinDownloadRate)*time.Second
}

func (c *Client) ReplicateShard(ctx context.Context, source, videoID string, chunkIndex int32) (meta *pb.ChunkMetadata, already bool, err error) {
	resp, err := c.rpc.ReplicateShard(ctx, &pb.ReplicateShardRequest{SourceWorker: source, VideoId: videoID, ChunkIndex: chunkIndex})
	if err != nil {
		return nil, false, fmt.Errorf("replicate %s chunk %d from %s: %w", videoID, chunkIndex, source, err)
	}
	if !resp.GetSuccess() {
		return nil, false, fmt.Errorf("replicate %s chunk %d from %s: %w: %s", videoID, chunkIndex, source, ErrRejected, resp.GetMessage())
	}
	m := resp.GetMetadata()
	if m == nil || m.GetChunkIndex() != chunkIndex || m.GetVideoId() != "" && m.GetVideoId() != videoID {
		return nil, false, fmt.Errorf("replicate %s chunk %d from %s: %w: the answer is for chunk %d of %q",
			videoID, chunkIndex, source, ErrProtocol, m.GetChunkIndex(), m.GetVideoId())
	}
	return m, resp.GetAlreadyStored(), nil
}
