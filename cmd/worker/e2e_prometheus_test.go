package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/videoshard/videoshard/proto"
)

var metricsAddrPattern = regexp.MustCompile(`msg="metrics listening" metrics_addr=(\S+)`)

// metricsURL is the base URL of w's metrics listener, from its start-up log.
func metricsURL(t *testing.T, w *worker) string {
	t.Helper()
	m := metricsAddrPattern.FindStringSubmatch(w.Logs.String())
	if m == nil {
		t.Fatalf("no metrics listener in the worker's log:\n%s", w.Logs)
	}
	return "http://" + m[1]
}

// httpGet returns the body of url, failing the test unless it is 200.
func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", url, resp.StatusCode, err, b)
	}
	return b
}

// deployConfig is deploy/prometheus.yml as shipped, with the test's
// workers as targets, a 1 s scrape and evaluation interval, and the rules
// file beside it.
func deployConfig(t *testing.T, dir string, targets []string) string {
	t.Helper()
	cfg := string(readFile(t, filepath.Join("..", "..", "deploy", "prometheus.yml")))
	quoted := make([]string, len(targets))
	for i, a := range targets {
		quoted[i] = strconv.Quote(a)
	}
	for old, repl := range map[string]string{
		`targets: ["worker-1:9091", "worker-2:9091"]`: "targets: [" + strings.Join(quoted, ", ") + "]",
		"scrape_interval: 15s":                        "scrape_interval: 1s",
		"evaluation_interval: 15s":                    "evaluation_interval: 1s",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("deploy/prometheus.yml has no %q to replace: keep the test in step with it", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), readFile(t, filepath.Join("..", "..", "deploy", "alerts.yml")), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePort returns a loopback address nothing listens on just now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs the prometheus binary with config, stopped with
// SIGTERM at the end of the test; it returns its API's base URL.
func startPrometheus(t *testing.T, bin, config string) string {
	t.Helper()
	addr := freePort(t)
	dir := t.TempDir()
	logs, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", readFile(t, logs.Name()))
		}
	})
	return "http://" + addr
}

// promAPI is a Prometheus HTTP API answer.
type promAPI struct {
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
}

// promGet decodes the data of GET base+path into v; false while
// Prometheus is not answering yet.
func promGet(base, path string, v any) bool {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + path)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var a promAPI
	if json.NewDecoder(resp.Body).Decode(&a) != nil || a.Status != "success" {
		return false
	}
	return json.Unmarshal(a.Data, v) == nil
}

// eventually polls cond every 250 ms for up to a minute.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute; last: %s", what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A real Prometheus, configured by deploy/prometheus.yml and
// deploy/alerts.yml, scrapes two real workers: both targets are up, the
// chunk counters move as chunks are sent, and the alert rules are loaded.
// Prometheus is a test dependency like ffmpeg (scripts/ensure-deps.sh
// installs it): the test fails, never skips, without it.
func TestPrometheusScrapesWorkers(t *testing.T) {
	var bins [2]string
	for i, name := range []string{"prometheus", "promtool"} {
		var err error
		if bins[i], err = exec.LookPath(name); err != nil {
			t.Fatalf("this test needs %s in PATH (Debian package prometheus; scripts/ensure-deps.sh installs it): %v", name, err)
		}
	}
	bin, promtool := bins[0], bins[1]
	const yaml = "encoder: simulated\nmetrics: {listen: \"127.0.0.1:0\"}\n"
	workers := []*worker{startWorker(t, "", yaml), startWorker(t, "", yaml)}
	var targets []string
	for _, w := range workers {
		u := metricsURL(t, w)
		targets = append(targets, strings.TrimPrefix(u, "http://"))
		// The exposition lints clean: names, types, units, help.
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = bytes.NewReader(httpGet(t, u+"/metrics"))
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	prom := startPrometheus(t, bin, deployConfig(t, t.TempDir(), targets))

	eventually(t, "both targets up", func() (bool, string) {
		var d struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if !promGet(prom, "/api/v1/targets", &d) {
			return false, "no answer"
		}
		up := 0
		for _, at := range d.ActiveTargets {
			if at.Health == "up" {
				up++
			}
		}
		return up == len(workers) && len(d.ActiveTargets) == len(workers), fmt.Sprintf("%+v", d.ActiveTargets)
	})

	ctx := ctxT(t)
	const perWorker = 3
	for i, w := range workers {
		for c := range perWorker {
			_, err := w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "prom.mp4", ChunkIndex: int32(i*perWorker + c),
				ChunkData: bytes.Repeat([]byte{byte(c)}, 10000)})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "chunk counters moved", func() (bool, string) {
		var d struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		}
		q := url.QueryEscape(`videoshard_chunks_processed_total{outcome="stored"}`)
		if !promGet(prom, "/api/v1/query?query="+q, &d) {
			return false, "no answer"
		}
		moved := 0
		for _, r := range d.Result {
			if v, _ := r.Value[1].(string); v == strconv.Itoa(perWorker) {
				moved++
			}
		}
		return moved == len(workers), fmt.Sprintf("%+v", d.Result)
	})
	eventually(t, "store figures scraped", func() (bool, string) {
		var d struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		}
		q := url.QueryEscape("count(videoshard_store_free_bytes > 0 and videoshard_store_disk_bytes > 0)")
		if !promGet(prom, "/api/v1/query?query="+q, &d) || len(d.Result) != 1 {
			return false, "no answer"
		}
		v, _ := d.Result[0].Value[1].(string)
		return v == strconv.Itoa(len(workers)), v
	})

	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name   string `json:"name"`
				Health string `json:"health"`
			} `json:"rules"`
		} `json:"groups"`
	}
	eventually(t, "alert rules loaded and evaluated", func() (bool, string) {
		if !promGet(prom, "/api/v1/rules?type=alert", &rules) {
			return false, "no answer"
		}
		ok := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Health == "ok" {
					ok++
				}
			}
		}
		return ok == 4, fmt.Sprintf("%+v", rules.Groups)
	})
	var names []string
	for _, r := range rules.Groups[0].Rules {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, ","), "VideoshardWorkerDown,VideoshardStoreDiskNearlyFull,VideoshardCorruptionFound,VideoshardQueueSaturated"; got != want {
		t.Errorf("rules %s, want %s", got, want)
	}
}
