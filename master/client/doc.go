// Package client is the master's wire client of one videoshard worker
// (replication.VideoProcessingService, see proto/videoshard.proto): it never
// reads a worker's disk.
//
// Client wraps one gRPC connection to one worker. Chunk uploads pick the
// RPC by size (unary ProcessChunk when the chunk fits one message, the
// client-streaming UploadChunk otherwise, read a frame at a time);
// downloads use the server-streaming DownloadShard, bounded in size, time
// and rate, and verify the SHA-256 on the way. Worker errors are gRPC
// status errors wrapped with %w, so status.Code(err) gives the worker's
// code; every text a worker sends is stripped of control and format
// characters before the master prints it (peertext.go).
package client
