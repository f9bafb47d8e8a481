package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
)

// Pins keep a video's chunks from eviction. A pin is an empty file named
// by the video id in <root>/.pins, so that it survives a restart as the
// chunks do: a master pins the videos of a job for the job's whole life,
// and a worker restarted meanwhile must not then evict them.

const pinsDirName = ".pins"

// DefaultMaxPins is Options.MaxPins when unset.
const DefaultMaxPins = 10_000

// Pin keeps videoID's chunks from eviction until Unpin; the pin is durable
// when Pin returns. A video may be pinned before it has chunks. Pinning a
// pinned video does nothing.
func (s *Store) Pin(videoID string) error {
	if err := ValidateVideoID(videoID); err != nil {
		return err
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if _, ok := s.pins[videoID]; ok {
		return nil
	}
	if len(s.pins) >= s.maxPins {
		return fmt.Errorf("pin %s: %w: %d videos are pinned already, the most a store keeps; unpin some", videoID, ErrNoSpace, len(s.pins))
	}
	d, err := s.pinDir()
	if err != nil {
		return fmt.Errorf("pin %s: %w", videoID, err)
	}
	f, err := s.fs.CreateTemp(d, ".pin"+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("pin %s: %w", videoID, noSpace(err))
	}
	tmp := f.Name()[len(d.Path())+1:]
	if err := f.Close(); err != nil {
		s.fs.Remove(d, tmp)
		return fmt.Errorf("pin %s: %w", videoID, err)
	}
	if err := s.fs.Rename(d, tmp, d, videoID); err != nil {
		s.fs.Remove(d, tmp)
		return fmt.Errorf("pin %s: %w", videoID, noSpace(err))
	}
	if err := s.fs.SyncDir(d); err != nil {
		return fmt.Errorf("pin %s: %w", videoID, err)
	}
	s.pins[videoID] = struct{}{}
	return nil
}

// Unpin makes videoID's chunks evictable again; durable when it returns.
// Unpinning a video that is not pinned does nothing.
func (s *Store) Unpin(videoID string) error {
	if err := ValidateVideoID(videoID); err != nil {
		return err
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if _, ok := s.pins[videoID]; !ok {
		return nil
	}
	d, err := s.pinDir()
	if err != nil {
		return fmt.Errorf("unpin %s: %w", videoID, err)
	}
	if err := s.fs.Remove(d, videoID); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", videoID, err)
	}
	if err := s.fs.SyncDir(d); err != nil {
		return fmt.Errorf("unpin %s: %w", videoID, err)
	}
	delete(s.pins, videoID)
	return nil
}

// Pinned reports whether videoID is pinned.
func (s *Store) Pinned(videoID string) bool {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	_, ok := s.pins[videoID]
	return ok
}

// PinnedVideos returns the pinned video ids, sorted.
func (s *Store) PinnedVideos() []string {
	s.pinMu.Lock()
	ids := make([]string, 0, len(s.pins))
	for id := range s.pins {
		ids = append(ids, id)
	}
	s.pinMu.Unlock()
	sort.Strings(ids)
	return ids
}

// pinDir is <root>/.pins, created on first use. Held: pinMu.
func (s *Store) pinDir() (*Dir, error) {
	if s.pinsDir == nil {
		d, err := s.fixedDir(pinsDirName)
		if err != nil {
			return nil, err
		}
		s.pinsDir = d
	}
	return s.pinsDir, nil
}

// loadPins reads the pins a previous process left. A name that is not a
// video id is not a pin (only Pin writes here): the leftover of a Pin
// interrupted between create and rename is removed, anything else is
// logged and left alone.
func (s *Store) loadPins() error {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	s.pins = make(map[string]struct{})
	if _, err := s.rootDir.lstat(pinsDirName); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	d, err := s.pinDir()
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	names, err := d.list()
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	for _, name := range names {
		switch {
		case isTempName(name):
			if err := s.fs.Remove(d, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("cannot remove an interrupted pin", "path", d.join(name), "err", err)
			}
		case ValidateVideoID(name) != nil:
			s.log.Warn("not a pin: the name is not a video id; left alone", "path", d.join(name))
		default:
			s.pins[name] = struct{}{}
		}
	}
	return nil
}
