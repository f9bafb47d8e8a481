// Package e2etest builds the project's binaries and runs real workers for
// end-to-end tests: on a loopback port, with a store in a temporary
// directory, stopped with SIGTERM when the test ends.
package e2etest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/videoshard/videoshard/proto"
)

// Build compiles the main packages pkgs (import paths) into dir, with the
// race detector when the tests run with it, and returns the binaries' paths
// by the packages' last element ("worker", "master").
func Build(dir string, pkgs ...string) (map[string]string, error) {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if RaceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %v: %v\n%s", pkgs, err, out)
	}
	bins := map[string]string{}
	for _, p := range pkgs {
		name := p[strings.LastIndex(p, "/")+1:]
		bins[name] = filepath.Join(dir, name)
	}
	return bins, nil
}

// Worker is a running worker process.
type Worker struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Addr   string
	Root   string
	Config string
	Conn   *grpc.ClientConn
	Client pb.VideoProcessingServiceClient
	Logs   *Buffer
	Done   chan struct{} // closed when the process has exited
	Err    error         // its exit status, once Done is closed
}

// Buffer is a strings.Builder safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var addrPattern = regexp.MustCompile(`msg="videoshard worker listening" addr=(\S+)`)

// dialAddr is where to reach a worker that listens on addr: a wildcard
// address (0.0.0.0, ::) through 127.0.0.1.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// StartWorker runs the worker binary with yaml appended to a config that
// listens on a free loopback port (or listen, if not empty; Addr is then
// 127.0.0.1 for a wildcard address) and stores in
// root (a new temporary directory when empty). The worker is stopped with
// SIGTERM at the end of the test, which fails if it does not exit cleanly.
//
// Conn dials in plaintext; dial options are applied after that default,
// so a worker with tls.* in yaml wants grpc.WithTransportCredentials (and,
// with auth.*, grpc.WithPerRPCCredentials).
func StartWorker(t testing.TB, bin, root, listen, yaml string, dial ...grpc.DialOption) *Worker {
	t.Helper()
	if root == "" {
		root = filepath.Join(t.TempDir(), "store")
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	config := filepath.Join(t.TempDir(), "worker.yaml")
	// A yaml with its own storage mapping, in flow style, gets the root
	// inside it: YAML refuses a key defined twice.
	body := fmt.Sprintf("listen: %s\nstorage:\n  root: %s\n%s", listen, root, yaml)
	if rest, ok := strings.CutPrefix(yaml, "storage: {"); ok {
		body = fmt.Sprintf("listen: %s\nstorage: {root: %s, %s", listen, root, rest)
	}
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &Worker{t: t, Root: root, Config: config, Logs: &Buffer{}, Done: make(chan struct{})}
	w.Cmd = exec.Command(bin, "--config", config)
	stderr, err := w.Cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			w.Logs.add(line + "\n")
			if m := addrPattern.FindStringSubmatch(line); m != nil {
				select {
				case addrCh <- dialAddr(m[1]):
				default:
				}
			}
		}
		w.Err = w.Cmd.Wait()
		close(w.Done)
	}()
	select {
	case w.Addr = <-addrCh:
	case <-w.Done:
		t.Fatalf("worker exited at start-up: %v\n%s", w.Err, w.Logs)
	case <-time.After(30 * time.Second):
		w.Cmd.Process.Kill()
		t.Fatalf("worker did not start\n%s", w.Logs)
	}
	w.Conn, err = grpc.NewClient(w.Addr, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(512<<20), grpc.MaxCallSendMsgSize(512<<20)),
	}, dial...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.Client = pb.NewVideoProcessingServiceClient(w.Conn)
	t.Cleanup(w.Stop)
	return w
}

// Stop sends SIGTERM and waits for a clean exit; it does nothing if the
// worker has already exited.
func (w *Worker) Stop() {
	w.Conn.Close()
	select {
	case <-w.Done:
		return
	default:
	}
	w.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.Done:
		if w.Err != nil {
			w.t.Errorf("worker exited with %v\n%s", w.Err, w.Logs)
		}
	case <-time.After(30 * time.Second):
		w.Cmd.Process.Kill()
		w.t.Errorf("worker did not stop on SIGTERM\n%s", w.Logs)
	}
}

// Kill ends the worker with SIGKILL, as a crash would, and waits for it.
func (w *Worker) Kill() {
	w.Cmd.Process.Kill()
	<-w.Done
}

// WaitHealthy waits up to 30 s for the worker's CheckHealth to say healthy
// (dependency checks done), failing the test otherwise.
func (w *Worker) WaitHealthy() {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err := w.Client.CheckHealth(ctx, &pb.HealthCheckRequest{MasterId: "e2etest"})
		cancel()
		if err == nil && h.GetIsHealthy() {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("worker not healthy after 30s: %v %v\n%s", h, err, w.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
