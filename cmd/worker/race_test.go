//go:build race

package main

// raceEnabled builds the worker under test with the race detector too, so
// end-to-end runs under `go test -race` check the server's own goroutines.
const raceEnabled = true
