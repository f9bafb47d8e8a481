// Package master is a client of the worker's wire API
// (replication.VideoProcessingService, see proto/videoshard.proto).
//
// A Client wraps one gRPC connection to one worker. Its methods take a
// context first; cancelling it cancels the call in flight. Errors the worker
// returns are gRPC status errors, wrapped with %w and a short description of
// the call, so status.Code(err) gives the worker's code. Errors the client
// detects itself (a shard that does not match its checksum, a worker that
// breaks the streaming protocol, an old-style success=false answer) are the
// sentinels below, also wrapped.
//
// Chunk uploads pick the RPC by size: a chunk that fits in one message goes
// through the original unary ProcessChunk, a larger one through the
// client-streaming UploadChunk, read from the file one frame at a time so a
// chunk is never held in memory whole. Downloads always use the
// server-streaming DownloadShard and verify the SHA-256 on the way.
//
// Caveat: this is the first layer of the master. It talks to one worker and
// neither retries nor splits videos; that belongs to the layers above.
package master
