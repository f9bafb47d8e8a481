//go:build !race

package e2etest

// RaceEnabled is true when built with the race detector.
const RaceEnabled = false
