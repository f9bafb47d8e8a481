package storage

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go driver "sqlite"
)

// indexSchema is the version of the SQLite index's schema (its
// user_version). An index of another version is rebuilt.
const indexSchema = 2

// indexDBName is the database in <root>/.index.
const indexDBName = "index.db"

// touchInterval is how often recorded reads are written to the database.
const touchInterval = time.Second

// errIndexCorrupt is a row the database holds that cannot be what the
// store wrote; the index is then rebuilt at the next Open.
var errIndexCorrupt = errors.New("index database corrupt")

const sqliteSchema = `
CREATE TABLE chunks (
	video_id        TEXT NOT NULL,
	chunk_index     INTEGER NOT NULL,
	encoded_size    INTEGER NOT NULL,
	checksum_sha256 TEXT NOT NULL,
	video_codec     TEXT NOT NULL,
	encoder         TEXT NOT NULL,
	processed_at    INTEGER NOT NULL, -- Unix ns
	last_read       INTEGER NOT NULL, -- Unix ns
	metadata        BLOB NOT NULL,    -- the Metadata as JSON, without shard_location
	PRIMARY KEY (video_id, chunk_index)
) WITHOUT ROWID;
`

// sqliteLastReadIndex is created after a rebuild's rows are in: building
// it once is faster than keeping it up to date row by row.
const sqliteLastReadIndex = `CREATE INDEX IF NOT EXISTS chunks_by_last_read ON chunks (last_read, video_id, chunk_index)`

// sqliteBriefIndex covers a brief listing (page with Brief), so that it
// reads the index alone: the table's rows carry the metadata, about 700
// bytes each, and a listing of 10,000 chunks would read them all.
const sqliteBriefIndex = `CREATE INDEX IF NOT EXISTS chunks_brief ON chunks (video_id, chunk_index, encoded_size, checksum_sha256)`

// sqliteIndex keeps the committed chunks in an SQLite database. Every
// write is its own transaction, visible to the next query; none is
// fsynced (synchronous=OFF): the metadata files are the truth and an index
// not closed cleanly is rebuilt from them. Reads are recorded in memory
// and written every touchInterval.
//
// Nothing read from the database is trusted further than the files would
// be: a row must name a valid chunk and its metadata the same one, else it
// is errIndexCorrupt; shard locations are made from the root, never read.
type sqliteIndex struct {
	db        *sql.DB
	shardPath func(video string, n int) string

	wmu sync.Mutex // serialises write transactions

	brief *briefCache // whole brief listings of videos

	touchMu sync.Mutex
	touched map[chunkKey]int64 // reads not yet written; guarded by touchMu
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

var _ chunkIndex = (*sqliteIndex)(nil)

// openSQLiteIndex opens (creating if missing) the database at path. With
// fresh, path must not exist yet and the schema is created; else its
// schema version must be indexSchema.
func openSQLiteIndex(path string, fresh bool, shardPath func(string, int) string) (*sqliteIndex, error) {
	// A 64 MiB page cache per connection (the default is 2 MiB), and the
	// database mapped rather than read: a page of 5,000 chunks reads some
	// 4 MB of rows, twice as fast without a pread for each 4 KiB.
	dsn := "file:" + uriPath.Replace(path) + "?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=busy_timeout(10000)" +
		"&_pragma=cache_size(-65536)&_pragma=mmap_size(4294967296)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	x := &sqliteIndex{db: db, shardPath: shardPath, touched: make(map[chunkKey]int64), brief: newBriefCache(),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := x.init(fresh); err != nil {
		db.Close()
		return nil, err
	}
	go x.touchLoop()
	return x, nil
}

// uriPath escapes what a file: URI's path may not hold as itself: '?'
// (the query, where the driver's options start), '#' (the fragment) and
// '%' (SQLite decodes %HH), so that the root's path is opened as it is,
// never a file beside the store.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func (x *sqliteIndex) init(fresh bool) error {
	if fresh {
		_, err := x.db.Exec(sqliteSchema + fmt.Sprintf("PRAGMA user_version = %d;", indexSchema))
		return err
	}
	var v int
	if err := x.db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v != indexSchema {
		return fmt.Errorf("schema version %d, want %d", v, indexSchema)
	}
	return nil
}

// build inserts metas, in key order (sequential inserts into the B-tree),
// in one transaction, then indexes last_read.
func (x *sqliteIndex) build(metas map[chunkKey]Metadata) error {
	keys := make([]chunkKey, 0, len(metas))
	for k := range metas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b chunkKey) int {
		return cmp.Or(cmp.Compare(a.video, b.video), cmp.Compare(a.chunk, b.chunk))
	})
	x.wmu.Lock()
	defer x.wmu.Unlock()
	defer x.brief.invalidateAll()
	tx, err := x.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.Prepare(insertChunk)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, k := range keys {
		args, err := chunkRow(metas[k])
		if err != nil {
			return err
		}
		if _, err := ins.Exec(args...); err != nil {
			return err
		}
	}
	for _, index := range []string{sqliteLastReadIndex, sqliteBriefIndex} {
		if _, err := tx.Exec(index); err != nil {
			return err
		}
	}
	return tx.Commit()
}

const insertChunk = `INSERT OR REPLACE INTO chunks (video_id, chunk_index, encoded_size, checksum_sha256,
	video_codec, encoder, processed_at, last_read, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// chunkRow is insertChunk's arguments for m.
func chunkRow(m Metadata) ([]any, error) {
	m.ShardLocation = ""
	blob, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode metadata of %s chunk %d: %w", m.VideoID, m.ChunkIndex, err)
	}
	at := processedAt(m)
	return []any{m.VideoID, m.ChunkIndex, m.EncodedSize, m.ChecksumSHA256, m.VideoCodec, m.Encoder, at, at, blob}, nil
}

// decodeRow checks and decodes a row's metadata.
func (x *sqliteIndex) decodeRow(video string, n int, blob []byte) (Metadata, error) {
	if validateKey(video, n) != nil {
		return Metadata{}, fmt.Errorf("%w: a row names an invalid chunk", errIndexCorrupt)
	}
	m, err := decodeMetadata(blob)
	if err != nil || m.VideoID != video || m.ChunkIndex != n {
		return Metadata{}, fmt.Errorf("%w: the row of %s chunk %d holds other metadata", errIndexCorrupt, video, n)
	}
	m.ShardLocation = x.shardPath(video, n)
	return m, nil
}

func (x *sqliteIndex) get(key chunkKey) (Metadata, bool, error) {
	var blob []byte
	err := x.db.QueryRow(`SELECT metadata FROM chunks WHERE video_id = ? AND chunk_index = ?`,
		key.video, key.chunk).Scan(&blob)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Metadata{}, false, nil
	case err != nil:
		return Metadata{}, false, err
	}
	m, err := x.decodeRow(key.video, key.chunk, blob)
	return m, err == nil, err
}

func (x *sqliteIndex) video(id string) ([]Metadata, error) {
	rows, err := x.db.Query(`SELECT chunk_index, metadata FROM chunks WHERE video_id = ? ORDER BY chunk_index`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Metadata
	for rows.Next() {
		var n int
		var blob []byte
		if err := rows.Scan(&n, &blob); err != nil {
			return nil, err
		}
		m, err := x.decodeRow(id, n, blob)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// page asks for one chunk more than the limit, to tell whether more
// follow, as index.page does.
func (x *sqliteIndex) page(opts PageOptions) ([]Video, bool, error) {
	if opts.Brief && opts.VideoID != "" && opts.Filter == (Filter{}) && !opts.uncached {
		return x.briefPage(opts)
	}
	var q strings.Builder
	q.WriteString(`SELECT video_id, chunk_index, encoded_size, checksum_sha256`)
	if !opts.Brief {
		q.WriteString(`, metadata`)
	}
	q.WriteString(` FROM chunks WHERE (video_id, chunk_index) > (?, ?)`)
	after := ChunkRef{ChunkIndex: -1}
	if opts.After != nil {
		after = *opts.After
	}
	args := []any{after.VideoID, after.ChunkIndex}
	cond := func(expr string, arg any) {
		q.WriteString(" AND " + expr)
		args = append(args, arg)
	}
	f := opts.Filter
	if opts.VideoID != "" {
		cond("video_id = ?", opts.VideoID)
	}
	if f.VideoCodec != "" {
		cond("video_codec = ?", f.VideoCodec)
	}
	if f.Encoder != "" {
		cond("encoder = ?", f.Encoder)
	}
	if !f.ProcessedAfter.IsZero() {
		cond("processed_at > ?", f.ProcessedAfter.UnixNano())
	}
	if !f.ProcessedBefore.IsZero() {
		cond("processed_at < ?", f.ProcessedBefore.UnixNano())
	}
	q.WriteString(` ORDER BY video_id, chunk_index`)
	if opts.Limit > 0 {
		q.WriteString(` LIMIT ?`)
		args = append(args, opts.Limit+1)
	}
	rows, err := x.db.Query(q.String(), args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var videos []Video
	var video sql.RawBytes
	var m Metadata
	var blob []byte
	dest := []any{&video, &m.ChunkIndex, &m.EncodedSize, &m.ChecksumSHA256}
	if !opts.Brief {
		dest = append(dest, &blob)
	}
	n := 0
	for rows.Next() {
		if opts.Limit > 0 && n == opts.Limit {
			return videos, true, nil
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, false, err
		}
		// Rows come by video: its id is checked, and made a string, once.
		if len(videos) == 0 || videos[len(videos)-1].ID != string(video) {
			if ValidateVideoID(string(video)) != nil {
				return nil, false, fmt.Errorf("%w: a row names an invalid video", errIndexCorrupt)
			}
			videos = append(videos, Video{ID: string(video)})
		}
		v := &videos[len(videos)-1]
		if ValidateChunkIndex(int64(m.ChunkIndex)) != nil {
			return nil, false, fmt.Errorf("%w: a row names an invalid chunk", errIndexCorrupt)
		}
		c := Metadata{VideoID: v.ID, ChunkIndex: m.ChunkIndex, EncodedSize: m.EncodedSize, ChecksumSHA256: m.ChecksumSHA256,
			ShardLocation: x.shardPath(v.ID, m.ChunkIndex)}
		if !opts.Brief {
			if c, err = x.decodeRow(v.ID, m.ChunkIndex, blob); err != nil {
				return nil, false, err
			}
		}
		v.Chunks = append(v.Chunks, c)
		n++
	}
	return videos, false, rows.Err()
}

func (x *sqliteIndex) put(m Metadata) (int64, bool, error) {
	args, err := chunkRow(m)
	if err != nil {
		return 0, false, err
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	defer x.brief.invalidate(m.VideoID) // after the write, whatever became of it
	tx, err := x.db.Begin()
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	var prev int64
	err = tx.QueryRow(`SELECT encoded_size FROM chunks WHERE video_id = ? AND chunk_index = ?`,
		m.VideoID, m.ChunkIndex).Scan(&prev)
	had := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	if _, err := tx.Exec(insertChunk, args...); err != nil {
		return 0, false, err
	}
	return prev, had, tx.Commit()
}

func (x *sqliteIndex) drop(key chunkKey) (int64, bool, error) {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	defer x.brief.invalidate(key.video)
	var prev int64
	err := x.db.QueryRow(`DELETE FROM chunks WHERE video_id = ? AND chunk_index = ? RETURNING encoded_size`,
		key.video, key.chunk).Scan(&prev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return prev, err == nil, err
}

func (x *sqliteIndex) touch(key chunkKey, at int64) {
	x.touchMu.Lock()
	x.touched[key] = at
	x.touchMu.Unlock()
}

func (x *sqliteIndex) touchLoop() {
	defer close(x.stopped)
	t := time.NewTicker(touchInterval)
	defer t.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-t.C:
			x.flushTouched() // an error loses only recency; flushTouched retries it
		}
	}
}

// flushTouched writes the recorded reads in one transaction. On failure
// they are kept, unless newer ones came meanwhile, for the next flush.
func (x *sqliteIndex) flushTouched() error {
	x.touchMu.Lock()
	batch := x.touched
	x.touched = make(map[chunkKey]int64)
	x.touchMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := x.writeTouched(batch)
	if err != nil {
		x.touchMu.Lock()
		for k, at := range batch {
			if _, newer := x.touched[k]; !newer {
				x.touched[k] = at
			}
		}
		x.touchMu.Unlock()
	}
	return err
}

func (x *sqliteIndex) writeTouched(batch map[chunkKey]int64) error {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	tx, err := x.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	upd, err := tx.Prepare(`UPDATE chunks SET last_read = ? WHERE video_id = ? AND chunk_index = ? AND last_read < ?`)
	if err != nil {
		return err
	}
	defer upd.Close()
	for k, at := range batch {
		if _, err := upd.Exec(at, k.video, k.chunk, at); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (x *sqliteIndex) leastRecent(after lruCursor, limit int) ([]lruEntry, error) {
	if err := x.flushTouched(); err != nil {
		return nil, err
	}
	// A keyset page of the last_read index: each page costs what it
	// holds, however many chunks an eviction has had to pass.
	rows, err := x.db.Query(`SELECT last_read, video_id, chunk_index, metadata FROM chunks
		WHERE (last_read, video_id, chunk_index) > (?, ?, ?)
		ORDER BY last_read, video_id, chunk_index LIMIT ?`, after.at, after.key.video, after.key.chunk, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lruEntry
	for rows.Next() {
		var e lruEntry
		var blob []byte
		if err := rows.Scan(&e.at, &e.key.video, &e.key.chunk, &blob); err != nil {
			return nil, err
		}
		if e.Metadata, err = x.decodeRow(e.key.video, e.key.chunk, blob); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// close writes the recorded reads, folds the write-ahead log into the
// database and closes it. Afterwards every method fails.
func (x *sqliteIndex) close() error {
	var err error
	x.once.Do(func() {
		close(x.stop)
		<-x.stopped
		err = x.flushTouched()
		if _, cerr := x.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err == nil {
			err = cerr
		}
		if cerr := x.db.Close(); err == nil {
			err = cerr
		}
	})
	return err
}
