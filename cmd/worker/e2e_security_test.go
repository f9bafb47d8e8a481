package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/internal/testpki"
	pb "github.com/videoshard/videoshard/proto"
)

// The worker binary refuses to listen beyond loopback unprotected, and
// says why, before it binds anything. (That insecure: true lifts the
// refusal is tested on the config alone; for TLS alone, end to end below.)
func TestE2ERefusesUnprotectedNonLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, workerBinary, "--listen", "0.0.0.0:0", "--encoder", "simulated",
		"--storage-root", filepath.Join(t.TempDir(), "store"))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("worker on 0.0.0.0 without TLS or auth: %v\n%s", err, out)
	}
	for _, want := range []string{"config key listen", "insecure: true", "tls.cert_file", "auth.tokens"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
}

// TLS with neither client certificates nor tokens beyond loopback lets any
// client in, as plaintext would: the worker refuses it, saying why, before
// it opens its store. With insecure: true it starts, warns, and serves a
// client that has no certificate and no token: what the refusal is about.
func TestE2ERefusesTLSAloneBeyondLoopback(t *testing.T) {
	pki := testpki.Generate(t)
	tlsAlone := "encoder: simulated\ntls: {cert_file: " + pki.ServerCert + ", key_file: " + pki.ServerKey + "}\n"
	dir := t.TempDir()
	root := filepath.Join(dir, "store")
	config := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(config, []byte("listen: 0.0.0.0:0\nstorage: {root: "+root+"}\n"+tlsAlone), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, workerBinary, "--config", config).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("worker on 0.0.0.0 with TLS alone: %v\n%s", err, out)
	}
	for _, want := range []string{"config key listen", "TLS alone authenticates no client", "anyone who can reach the port",
		"tls.client_ca_file", "auth.tokens", "insecure: true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the refused worker made its store: %v", err)
	}

	// The port is on every interface for as long as the test runs.
	w := e2etest.StartWorker(t, workerBinary, "", "0.0.0.0:0", tlsAlone+"insecure: true\n",
		grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(t, false))))
	logs := w.Logs.String()
	for _, want := range []string{"tls=on auth=off", "TLS without client certificates or tokens beyond loopback", "anyone who can reach the port"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the start-up logs do not say %q:\n%s", want, logs)
		}
	}
	if _, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{}); err != nil {
		t.Fatalf("ListShards without a certificate or token: %v", err)
	}
}
