// Package master encodes a video across videoshard workers, as a client of
// their wire API only (replication.VideoProcessingService, see
// proto/videoshard.proto): it never reads a worker's disk.
//
// The layers, bottom up:
//
//   - Client wraps one gRPC connection to one worker. Chunk uploads pick the
//     RPC by size (unary ProcessChunk when the chunk fits one message, the
//     client-streaming UploadChunk otherwise, read a frame at a time);
//     downloads use the server-streaming DownloadShard and verify the
//     SHA-256 on the way. Worker errors are gRPC status errors wrapped with
//     %w, so status.Code(err) gives the worker's code.
//   - The media functions run ffmpeg and ffprobe locally: Probe a source
//     (its packets read, and its pictures decoded and hashed once: the
//     ground truth), Split its video stream into chunks of the segment
//     length wherever its keyframes are (stream copies with a frame trim, or
//     lossless encodes), each proven to decode to the source's pictures,
//     ExtractSideStreams (audio and subtitles, carried once for the whole
//     file, never chunked), Join the shards with the concat demuxer and
//     stream copy, and Verify the output against the source (frames,
//     duration, drift, audio). MeasureQuality (quality.go, over
//     internal/quality, which the worker uses too) gives per-picture
//     PSNR and SSIM, pictures paired by position; the job measures every
//     shard against its chunk as it arrives (check.go).
//     ProbePresentation and ComparePresentation (presentation.go) check
//     what Verify does not: rotation, colour, HDR metadata, field order,
//     pixel shape, metadata, chapters, track languages, titles and
//     dispositions; Join writes back what the shards lost.
//   - Dispatcher spreads chunks over workers: least loaded first, per-worker
//     caps, retries of transient failures on another worker with backoff,
//     workers that stop answering taken out of rotation and re-probed, and
//     Av1an's frame-count check on every ffmpeg shard.
//   - JobState is a job's chunk map, saved atomically after every chunk.
//   - Encode and Reconstruct run whole jobs; Progress shows them.
//
// Every function that runs a program or a call takes a context first;
// cancelling it kills the programs (their whole process group) and cancels
// the calls in flight.
package master
