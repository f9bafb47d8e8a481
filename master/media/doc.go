// Package media is the master's local media work, through ffmpeg and
// ffprobe: Probe a source (its packets read, and its pictures decoded and
// hashed once: the ground truth), Split its video stream into chunks of
// the segment length wherever its keyframes are (stream copies with a frame
// trim, or lossless encodes), each proven to decode to the source's
// pictures, plan its audio and subtitles (carried once for the whole file,
// never chunked), Join the shards with the concat demuxer and stream copy,
// and Verify the output against the source (frames, duration, drift,
// audio). MeasureQuality (over internal/quality, which the worker uses
// too) gives per-picture PSNR and SSIM, pictures paired by position.
// ProbePresentation and ComparePresentation check what Verify does not:
// rotation, colour, HDR metadata, field order, pixel shape, metadata,
// chapters, track languages, titles and dispositions; Join writes back
// what the shards lost.
//
// The timeline: every function here measures time from the source's
// earliest stream start (SourceInfo.StartTime), the way ffmpeg does when it
// remuxes a file. Chunk.Start and Chunk.Duration come from the source's own
// packet timestamps, not from the chunk files (Matroska rounds to the
// millisecond), so that Join can place every shard exactly where its chunk
// was and the joined video neither drifts against the audio nor changes
// length.
//
// Every program runs through internal/proc under the caller's context:
// cancelling it kills ffmpeg or ffprobe (its whole process group) and the
// error wraps ctx.Err().
package media
