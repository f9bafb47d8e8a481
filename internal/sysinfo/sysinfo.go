// Package sysinfo reads process and machine load from /proc for health
// reports: whole-machine CPU utilisation and this process's resident memory.
package sysinfo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CPUSampler measures whole-machine CPU utilisation as the busy share of
// jiffies between two readings of /proc/stat, refreshed in the background.
type CPUSampler struct {
	statPath string

	mu      sync.Mutex // guards the fields below
	last    cpuTimes
	percent float64
	err     error
}

type cpuTimes struct{ busy, total uint64 }

// NewCPUSampler takes a first reading so that the first Percent after one
// interval is meaningful.
func NewCPUSampler() *CPUSampler {
	s := &CPUSampler{statPath: "/proc/stat"}
	s.last, s.err = readCPUTimes(s.statPath)
	return s
}

// Run refreshes the utilisation every interval until ctx ends.
func (s *CPUSampler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *CPUSampler) sample() {
	now, err := readCPUTimes(s.statPath)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	if dt := now.total - s.last.total; dt > 0 && now.total >= s.last.total && now.busy >= s.last.busy {
		s.percent = 100 * float64(now.busy-s.last.busy) / float64(dt)
	}
	s.last, s.err = now, nil
}

// Percent is the utilisation (0-100) over the last completed interval.
func (s *CPUSampler) Percent() (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.percent, s.err
}

func readCPUTimes(path string) (cpuTimes, error) {
	f, err := os.Open(path)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read cpu times: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read cpu times: %w", err)
	}
	return parseCPULine(line)
}

// parseCPULine reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal ...; idle and iowait count as idle.
func parseCPULine(line string) (cpuTimes, error) {
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("parse cpu times: unexpected line %q", line)
	}
	var t cpuTimes
	for i, f := range fields[1:] {
		if i >= 8 { // guest times are already counted in user and nice
			break
		}
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("parse cpu times: %w", err)
		}
		t.total += v
		if i != 3 && i != 4 {
			t.busy += v
		}
	}
	return t, nil
}

// RSSBytes is the resident set size of this process.
func RSSBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	return parseRSS(b)
}

func parseRSS(status []byte) (int64, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("read rss: unexpected line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read rss: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("read rss: no VmRSS line")
}
