package storage

// WithWalk returns opts with paths resolved by the fallback walk, as on a
// kernel without openat2.
func WithWalk(opts Options) Options {
	opts.walk = true
	return opts
}
