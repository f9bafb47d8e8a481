package sysinfo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseCPULine(t *testing.T) {
	tests := []struct {
		line      string
		busy, tot uint64
		wantErr   bool
	}{
		{"cpu  10 0 5 80 5 0 0 0 0 0\n", 15, 100, false},
		{"cpu 1 2 3 4\n", 6, 10, false},
		{"cpu0 1 2 3 4 5\n", 0, 0, true},
		{"cpu x 2 3 4 5\n", 0, 0, true},
	}
	for _, tt := range tests {
		got, err := parseCPULine(tt.line)
		if (err != nil) != tt.wantErr {
			t.Fatalf("parseCPULine(%q) err = %v, wantErr %v", tt.line, err, tt.wantErr)
		}
		if err == nil && (got.busy != tt.busy || got.total != tt.tot) {
			t.Errorf("parseCPULine(%q) = %+v, want busy %d total %d", tt.line, got, tt.busy, tt.tot)
		}
	}
}

func TestSamplerPercent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpu 100 0 0 100 0\n")
	s := &CPUSampler{statPath: path}
	s.last, s.err = readCPUTimes(path)
	write("cpu 175 0 0 125 0\n") // 75 busy of 100 jiffies
	s.sample()
	if got, err := s.Percent(); err != nil || got != 75 {
		t.Fatalf("Percent() = %v, %v; want 75", got, err)
	}
}

func TestRSSBytes(t *testing.T) {
	rss, err := RSSBytes()
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Fatalf("RSSBytes() = %d, implausibly small", rss)
	}
	if _, err := parseRSS([]byte("Name: x\n")); err == nil {
		t.Fatal("parseRSS without VmRSS: want error")
	}
}
