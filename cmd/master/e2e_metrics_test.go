package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/internal/e2etest"
)

// encode --metrics-listen serves the job's progress while it runs, and
// --metrics-file is its report at the end: every chunk with its worker,
// encode time, sizes and attempts, and the totals.
func TestE2EMetricsListenAndFile(t *testing.T) {
	const sim = "encoder: simulated\nsimulated: {delay: 300ms}\nlimits: {max_concurrent_tasks: 1}\n"
	w1 := e2etest.StartWorker(t, bins["worker"], "", "", sim)
	w2 := e2etest.StartWorker(t, bins["worker"], "", "", sim)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(bins["master"], "encode", "--workers", addrs(w1, w2), "--output", filepath.Join(dir, "out.mkv"),
		"--segment-seconds", "1", "--state-dir", filepath.Join(dir, "state"),
		"--metrics-file", report, "--metrics-listen", "127.0.0.1:0", testdata("h264_aac_640x360_30fps_4s.mp4"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	url := make(chan string, 1)
	var errLines strings.Builder
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			errLines.WriteString(line + "\n")
			if u, ok := strings.CutPrefix(line, "metrics: "); ok {
				url <- u
			}
		}
	}()
	var scrape string
	select {
	case u := <-url:
		// Scraped while the job runs: a chunk done, its bytes counted.
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if resp, err := http.Get(u); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if s := string(b); strings.Contains(s, "videoshard_master_chunks_done_total ") &&
					!strings.Contains(s, "videoshard_master_chunks_done_total 0") {
					scrape = s
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	case <-time.After(time.Minute):
	}
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Fatalf("master: %v\n%s\n%s", err, stdout.String(), errLines.String())
	}
	// The chunk count grows as a live split cuts: any but 0.
	if strings.Contains(scrape, "videoshard_master_chunks 0\n") {
		t.Errorf("scrape during the job counts no chunks:\n%s", scrape)
	}
	for _, want := range []string{"videoshard_master_chunks ", "videoshard_master_chunk_bytes_sent_total", "videoshard_master_chunks_in_flight{worker=", "videoshard_master_encode_seconds_bucket"} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape during the job lacks %q:\n%s", want, scrape)
		}
	}

	var r jobReport
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Chunks != 4 || len(r.ChunkReports) != 4 || r.Error != "" || r.EncodeSeconds <= 0 || r.InputBytes <= 0 {
		t.Fatalf("report: %s", b)
	}
	for _, c := range r.ChunkReports {
		if !c.Done || (c.Worker != w1.Addr && c.Worker != w2.Addr) || c.Attempts != 1 || c.EncodeSeconds == nil ||
			*c.EncodeSeconds < 0.3 || c.InputBytes <= 0 || c.EncodedBytes <= 0 {
			t.Errorf("chunk %d: %+v", c.Index, c)
		}
	}
	if r.PerWorker[w1.Addr]+r.PerWorker[w2.Addr] != 4 {
		t.Errorf("per worker: %v", r.PerWorker)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".report.json.tmp-*")); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}
