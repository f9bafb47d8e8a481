package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	pb "github.com/videoshard/videoshard/proto"
)

// ProcessFile sends the file at path to the worker as chunk chunkIndex of
// videoID, to be encoded with enc (nil: the worker's defaults), and returns
// the worker's answer.
//
// A file no larger than the unary limit goes in one ProcessChunk message;
// a larger one is streamed with UploadChunk: a header carrying the exact
// size, then frames of FrameBytes (or the unary limit, if smaller) read
// from the file, so memory use stays at one frame. The unary limit is the
// worker's max_unary_chunk_bytes (DefaultUnaryLimit if it reports none),
// capped by the client's own message limit; the first ProcessFile learns
// it with a health check and the client keeps it (see UnaryLimit).
//
// The file must be a regular file. If it changes size while being sent the
// call fails with ErrFileChanged and the upload is cancelled.
func (c *Client) ProcessFile(ctx context.Context, videoID string, chunkIndex int32, path string,
	enc *pb.EncodingOptions) (*pb.ProcessChunkResponse, error) {
	return c.ProcessFileTrimmed(ctx, videoID, chunkIndex, path, enc, nil)
}

// ChunkOptions are what a chunk request carries beyond its encoding.
type ChunkOptions struct {
	// Trim (nil: none), sent in ProcessChunkRequest.trim or
	// UploadHeader.trim: the worker keeps only trim.frame_count pictures
	// from picture trim.start_frame on, video only. Send a trim only to a
	// worker whose health lists pb.FeatureFrameTrim; any other worker ignores
	// it and encodes the whole chunk.
	Trim *pb.FrameTrim
	// WantPictureHashes asks for ProcessChunkResponse.picture_hashes; a
	// worker without pb.FeaturePictureHashes ignores it.
	WantPictureHashes bool
	// Stream sends the chunk with UploadChunk even when it fits a unary
	// call: a worker queues an upload received whole until an encode slot
	// frees, where it refuses a unary call beyond its slots.
	Stream bool
}

// ProcessFileTrimmed is ProcessFile with a frame trim (nil: none); see
// ChunkOptions.Trim.
func (c *Client) ProcessFileTrimmed(ctx context.Context, videoID string, chunkIndex int32, path string,
	enc *pb.EncodingOptions, trim *pb.FrameTrim) (*pb.ProcessChunkResponse, error) {
	return c.ProcessFileWith(ctx, videoID, chunkIndex, path, enc, ChunkOptions{Trim: trim})
}

// ProcessFileWith is ProcessFile with opts.
func (c *Client) ProcessFileWith(ctx context.Context, videoID string, chunkIndex int32, path string,
	enc *pb.EncodingOptions, opts ChunkOptions) (*pb.ProcessChunkResponse, error) {
	desc := fmt.Sprintf("process chunk %d of %q", chunkIndex, videoID)

	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file", desc, path)
	}
	size := fi.Size()

	limit, err := c.UnaryLimit(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	var resp *pb.ProcessChunkResponse
	if size <= limit && !opts.Stream {
		resp, err = c.processUnary(ctx, videoID, chunkIndex, f, size, enc, opts)
	} else {
		// A frame must fit in one message too.
		frame := max(min(FrameBytes, limit), 1)
		resp, err = c.upload(ctx, videoID, chunkIndex, f, size, frame, enc, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	if !resp.GetSuccess() {
		return nil, fmt.Errorf("%s: %w: %s", desc, ErrRejected, resp.GetMessage())
	}
	return resp, nil
}

// UnaryLimit returns the largest chunk ProcessFile sends with unary
// ProcessChunk. The first call asks the worker (a health check); later
// calls return the remembered value.
func (c *Client) UnaryLimit(ctx context.Context) (int64, error) {
	c.mu.Lock()
	limit := c.unaryLimit
	c.mu.Unlock()
	if limit > 0 {
		return limit, nil
	}

	h, err := c.Health(ctx)
	if err != nil {
		return 0, fmt.Errorf("unary limit: %w", err)
	}
	limit = h.GetMaxUnaryChunkBytes()
	if limit <= 0 {
		limit = DefaultUnaryLimit
	}
	if own := int64(c.maxMsg - pb.MessageHeadroom); own < limit {
		limit = own
	}

	c.mu.Lock()
	c.unaryLimit = limit
	c.mu.Unlock()
	return limit, nil
}

// processUnary sends the whole file in one ProcessChunk message.
func (c *Client) processUnary(ctx context.Context, videoID string, chunkIndex int32, f *os.File, size int64,
	enc *pb.EncodingOptions, opts ChunkOptions) (*pb.ProcessChunkResponse, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s shrank below %d bytes", ErrFileChanged, f.Name(), size)
		}
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if err := atEOF(f, size); err != nil {
		return nil, err
	}
	resp, err := c.rpc.ProcessChunk(ctx, &pb.ProcessChunkRequest{
		VideoId:           videoID,
		ChunkIndex:        chunkIndex,
		ChunkData:         data,
		Encoding:          enc,
		Trim:              opts.Trim,
		WantPictureHashes: opts.WantPictureHashes,
	})
	if err != nil {
		return nil, fmt.Errorf("ProcessChunk: %w", err)
	}
	return resp, nil
}

// upload streams the file with UploadChunk: the header, then data frames.
func (c *Client) upload(ctx context.Context, videoID string, chunkIndex int32, f *os.File, size, frame int64,
	enc *pb.EncodingOptions, opts ChunkOptions) (*pb.ProcessChunkResponse, error) {
	// Cancelling the stream's context is how an upload is abandoned: the
	// worker sees Canceled and discards what it received.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	stream, err := c.rpc.UploadChunk(ctx)
	if err != nil {
		return nil, fmt.Errorf("UploadChunk: %w", err)
	}
	header := &pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{
		Header: &pb.UploadHeader{
			VideoId:           videoID,
			ChunkIndex:        chunkIndex,
			TotalSize:         size,
			Encoding:          enc,
			Trim:              opts.Trim,
			WantPictureHashes: opts.WantPictureHashes,
		},
	}}
	if err := stream.Send(header); err != nil {
		return closeAndRecv(stream, err)
	}

	for sent := int64(0); sent < size; {
		// A fresh buffer per frame: gRPC may still hold a sent message.
		buf := make([]byte, min(frame, size-sent))
		n, err := io.ReadFull(f, buf)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s shrank to %d bytes, below %d", ErrFileChanged, f.Name(), sent+int64(n), size)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if err := stream.Send(&pb.UploadChunkRequest{
			Frame: &pb.UploadChunkRequest_Data{Data: buf},
		}); err != nil {
			return closeAndRecv(stream, err)
		}
		sent += int64(n)
	}
	if err := atEOF(f, size); err != nil {
		return nil, err
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("UploadChunk: %w", err)
	}
	return resp, nil
}

// closeAndRecv handles a failed Send. io.EOF means the worker ended the
// stream; its status comes from receiving.
func closeAndRecv(stream pb.VideoProcessingService_UploadChunkClient, sendErr error) (*pb.ProcessChunkResponse, error) {
	if !errors.Is(sendErr, io.EOF) {
		return nil, fmt.Errorf("UploadChunk: send: %w", sendErr)
	}
	_, err := stream.CloseAndRecv()
	if err == nil {
		err = fmt.Errorf("%w: worker answered before the upload was complete", ErrProtocol)
	}
	return nil, fmt.Errorf("UploadChunk: %w", err)
}

// atEOF checks that f holds nothing after its first size bytes.
func atEOF(f *os.File, size int64) error {
	var b [1]byte
	n, err := f.Read(b[:])
	if n > 0 {
		return fmt.Errorf("%w: %s grew past %d bytes", ErrFileChanged, f.Name(), size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return nil
}
