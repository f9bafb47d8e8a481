// Package master runs whole jobs across videoshard workers: it is a client
// of their wire API only (package client) and does its media work locally
// (package media).
//
//   - Dispatcher spreads chunks over workers: least loaded first, per-worker
//     caps, retries of transient failures on another worker with backoff,
//     workers that stop answering taken out of rotation and re-probed, and
//     Av1an's frame-count check on every ffmpeg shard, plus the picture
//     hashes that prove a chunk whose head alone was proven at the split.
//   - JobState is a job's chunk map, saved atomically after every chunk.
//   - Encode and Reconstruct run whole jobs (the job measures every shard
//     against its chunk as it arrives, check.go); Progress shows them.
//
// Every function that runs a program or a call takes a context first;
// cancelling it kills the programs (their whole process group) and cancels
// the calls in flight.
package master
