package storage

import "errors"

// Errors returned by Store methods, wrapped with detail; test with errors.Is.
var (
	// ErrInvalid is returned when a caller-supplied video id, chunk index,
	// location or payload is malformed. Nothing on disk is touched.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound is returned when no committed chunk or video matches.
	ErrNotFound = errors.New("not found")
	// ErrNoSpace is returned when the filesystem is full (ENOSPC/EDQUOT).
	ErrNoSpace = errors.New("no space left on device")
)
