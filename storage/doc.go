// Package storage keeps a worker's encoded shards and their metadata on the
// local filesystem. It knows files only: no encoder, no gRPC.
//
// # Layout
//
// The layout is the original worker's, so existing stores open unchanged:
//
//	<root>/<video_id>/chunk_<n>.shard                    the encoded chunk
//	<root>/metadata/<video_id>_chunk_<n>_metadata.json   its Metadata, JSON, 2-space indent
//	<root>/.tmp/                                         scratch for callers (TempDir)
//	<root>/.quarantine/<time>-<video_id>_chunk_<n>/      what was taken out of the store (QuarantineDir)
//	<root>/.lock                                         held by a Store opened with Options.Lock
//	<root>/.index/index.db, clean                        the SQLite index (Options.Index) and its clean marker
//	<root>/.pins/<video_id>                              an empty file: the video is pinned (Pin)
//
// Video ids are restricted (ValidateVideoID) so that an id is always exactly
// one safe path element; chunk indexes are 0..math.MaxInt32. Because a
// metadata file name is ambiguous when ids contain "_chunk_", identity is
// never parsed out of a name: Open reads video_id and chunk_index from the
// JSON and requires the name to be exactly what they produce.
//
// # Writing
//
// A chunk is written by Create, then Write (or an external process writing
// Pending.Path), then Commit or Abort. The bytes go to a hidden temporary
// file in TempDir; Commit fsyncs it, hashes it, writes the
// metadata to a temporary file the same way, and then renames the shard and
// the metadata into place, fsyncing each directory. A rename within one
// directory is atomic, so a shard name only ever refers to a complete file.
// Replacing an existing chunk first keeps a hard link to the old shard and
// metadata, so that a failure at any later step restores the previous
// version: after a failed Commit the store is as it was. What a crash can
// leave behind, and how Open repairs it, is described at Pending.Commit.
// Pending.CommitCopy commits a copy of another store's chunk with that
// chunk's metadata, refusing (ErrMismatch) bytes whose size or SHA-256
// are not the metadata's before anything is installed.
//
// # Reading
//
// Open reads every metadata file once (unless a clean SQLite index makes
// that unnecessary, see The index) and keeps the committed chunks in an
// index, sorted by video id and chunk index as they are added;
// Lookup, List, ListPage and VideoMetadata answer from it without touching
// the disk, and only a chunk whose shard was checked at Open (or that this
// Store committed) is listed. ListPage pages through the listing from a
// position (the last chunk of the previous page), so a page costs what it
// holds and paging is stable while chunks come and go. Temporary files are removed; shards
// without metadata, metadata without shards, shards of the wrong size and
// unusable metadata files are quarantined, so the index is what the video
// and metadata directories hold. OpenVerified opens a committed shard for
// a verified read, OpenShard for a plain one; ResolveLocation maps a client-supplied location back to a chunk, refusing
// anything that is not a shard path inside the root.
//
// # The index
//
// The metadata files are the truth; the index is derived from them. With
// IndexMemory it is built at every Open. With IndexSQLite (the default) it
// is an SQLite database in <root>/.index (pure Go, modernc.org/sqlite;
// WAL, no fsync: it is never the only copy of anything), which answers
// Lookup, ListPage and VideoMetadata directly, so that Open need not
// read every metadata file. Close writes the database out, fsyncs it and
// leaves a clean marker recording its size, Usage and a fingerprint of
// metadata/ and the video directories (their inode, mtime and ctime);
// Open removes the marker before anything changes. Open uses the
// database only if the marker is there, is of this schema version, and
// the fingerprint and size still match; otherwise (a crash, a file added
// or removed by hand, a truncated or foreign database, Options.Reindex)
// it rebuilds it from the files, logging why. Rows are checked as they
// are read (a valid chunk, metadata naming it), shard paths are made from
// the root, never read; a failed index write makes Close leave no marker,
// so the next Open rebuilds. Files rewritten in place while the store is
// closed are not seen (readers still check each shard's size).
//
// # Deleting, usage and recency
//
// Delete and DeleteVideo remove the metadata first (then fsync metadata/),
// then the shard, then the index entry, under the chunk's lock; they are
// idempotent and refuse (ErrBusy) a chunk with a Pending. For an eviction
// policy: Usage (chunks and shard bytes, kept as they change),
// LeastRecentlyRead (recency is the last OpenVerified/OpenShard, starting
// at the commit; persisted by IndexSQLite at most a second late, with an
// index on it) and InUse (an open reader, a Pending).
//
// # Integrity
//
// Integrity is this package's concern alone. Every committed shard's
// SHA-256, its identity and what clients verify, is in its metadata, and
// beside it (since it was added) its CRC-32C, computed in the same pass at
// Commit. OpenShard checks only the size. A VerifiedReader (OpenVerified,
// Verify) checks the bytes as it reads them, against the CRC-32C, which
// the CPU computes an order of magnitude faster than the SHA-256 (chunks
// committed before the CRC-32C was added: against the SHA-256). Scrub
// re-reads every shard at a bounded rate and checks the SHA-256 as well.
// A chunk found corrupt, by a reader or Scrub, is handled in one place:
// counted once (Corrupted), logged, and quarantined (Quarantine,
// QuarantineVersion): its files are moved, not deleted, into QuarantineDir
// and it leaves the index, so it is no longer listed or served, stays out
// after a reopen, and can simply be written again. It leaves the index
// last, so whoever no longer sees it also sees it counted and logged.
// RecentQuarantines lists the last 1000 chunks quarantined since Open (at
// Open included), with their reasons.
//
// # Symlinks
//
// Whoever can write the root (a shared volume, another service) could plant
// a symlink, or swap a video directory for one, to make the worker delete,
// move, read or create files elsewhere. So the store follows no symlink
// inside its root. Open resolves the root's own path once and opens it; from
// then on every file is reached through directory handles (Dir) by single
// names, with openat2(2) and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS on Linux
// and an O_NOFOLLOW walk one element at a time where openat2 is missing;
// renames, links, removals and directory creation are relative to those
// handles and never follow a link either. Open refuses (ErrSymlink) a store
// whose metadata/, .tmp/, .quarantine/, .lock or a video directory is a
// symlink. A shard reached through a symlink is corrupt: its metadata is
// quarantined, and the file behind the link is neither read, moved nor
// described. A commit whose video or metadata directory was moved away
// while it ran is undone. Messages name paths in the store, never what a
// link points to. Paths handed out for other processes to open
// (TempFile.Path, Pending.Path) name the open file itself
// (/proc/<pid>/fd/<n> on Linux), so a .tmp swapped for a symlink cannot
// send what ffmpeg writes outside the store; TempDir's path is resolved by
// whoever opens it.
//
// # Locking
//
// The original worker had four locks. Here:
//
//   - _file_write_lock (one lock for every write) becomes a lock per
//     (video, chunk), taken by Commit around the renames and the index
//     update. Different chunks and videos commit in parallel; the bytes are
//     written, fsynced and hashed before the lock is taken. The lock map is
//     reference counted, so it holds only chunks in flight.
//   - _file_read_lock is not needed: readers open only renamed, complete
//     files, never a file being written. OpenShard and OpenVerified take
//     the chunk's lock only for the open, so the file and the metadata
//     they return are the same
//     version; an open file keeps its content after a rename over its name.
//   - _metadata_lock becomes the per-chunk lock (one writer per metadata
//     file) plus a sync.RWMutex over the index, held only to read or copy map
//     entries and never during I/O, so readers never wait for unrelated
//     writes.
//   - _active_tasks_lock is not storage's concern: the server counts its
//     tasks with an atomic counter.
//
// # Caveats
//
// One Store per root: Open removes temporary files, including those of a
// live Store on the same root; Options.Lock makes a second Open fail
// instead. The index is built at Open, so files changed on disk by hand are
// seen only after reopening (a clean SQLite index: only if they changed a
// directory) (OpenShard and OpenVerified do check that the
// file still has the recorded size). Open checks each shard's size, not its
// checksum; that is the readers' and Scrub's job. A case-insensitive filesystem would let videos "A" and "a"
// collide. The failure-atomic replace uses hard links; on a filesystem
// without them a replace still works but a failure after its first rename
// loses the previous version (this is logged).
package storage
