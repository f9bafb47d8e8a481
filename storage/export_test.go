package storage

// WithWalk returns opts with paths resolved by the fallback walk, as on a
// kernel without openat2.
func WithWalk(opts Options) Options {
	opts.walk = true
	return opts
}

// TempPath is the pending shard's path in TempDir, where Path names the
// open file: for tests that play another process changing the store.
func (p *Pending) TempPath() string { return p.path }
