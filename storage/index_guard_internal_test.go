package storage

import (
	"errors"
	"fmt"
	"testing"
)

// codedErr stands in for the driver's *sqlite.Error.
type codedErr int

func (e codedErr) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e codedErr) Code() int     { return int(e) }

// failingIndex answers every call with err.
type failingIndex struct {
	chunkIndex
	err error
}

func (f failingIndex) get(chunkKey) (Metadata, bool, error) { return Metadata{}, false, f.err }

func TestGuardedIndex(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		corrupt bool
	}{
		{"corrupt", fmt.Errorf("query: %w", codedErr(sqliteCorrupt)), true},
		{"corrupt, extended code", codedErr(sqliteCorrupt | 1<<8), true},
		{"not a database", codedErr(sqliteNotADB), true},
		{"busy", codedErr(5), false},
		{"other", errors.New("disk I/O"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Store{index: &guardedIndex{chunkIndex: failingIndex{err: tt.err}}}
			_, _, err := s.index.get(chunkKey{"v", 1})
			if errors.Is(err, ErrIndexCorrupt) != tt.corrupt || !errors.Is(err, tt.err) {
				t.Fatalf("error %v: ErrIndexCorrupt %v, want %v, wrapping the driver's", err, errors.Is(err, ErrIndexCorrupt), tt.corrupt)
			}
			if got := s.CheckIndex(); (got != nil) != tt.corrupt || tt.corrupt && !errors.Is(got, ErrIndexCorrupt) {
				t.Fatalf("CheckIndex = %v after %v", got, tt.err)
			}
		})
	}
}
