//go:build race

package e2etest

// RaceEnabled is true when built with the race detector: Build then builds
// the binaries with it too, so end-to-end runs check their goroutines.
const RaceEnabled = true
