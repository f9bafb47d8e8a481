// Package master runs whole jobs across videoshard workers: it is a client
// of their wire API only (package client) and does its media work locally
// (package media).
//
//   - Dispatcher spreads chunks over workers: least loaded first, per-worker
//     caps, retries of transient failures on another worker with backoff,
//     workers that stop answering taken out of rotation and re-probed, and
//     Av1an's frame-count check on every ffmpeg shard, plus the picture
//     hashes that prove a chunk whose head alone was proven at the split.
//   - JobState is a job's chunk map: a snapshot and an append-only journal
//     of the chunks changed since, so saving a chunk costs the same at the
//     7,000th as at the 7th.
//   - Encode and Reconstruct run whole jobs. A fresh job is cut while its
//     source is decoded (media.SplitLive), and each proven batch of chunks
//     goes to the dispatcher at once (Dispatcher.RunStream); the job
//     measures every shard against its chunk as it arrives (check.go); what
//     the probe and the split found is kept in the job's work directory, so
//     a resume costs the work that is left. Progress shows them.
//
// Every function that runs a program or a call takes a context first;
// cancelling it kills the programs (their whole process group) and cancels
// the calls in flight.
package master
