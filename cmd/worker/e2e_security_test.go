package main

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The worker binary refuses to listen beyond loopback unprotected, and
// says why, before it binds anything. (That insecure: true lifts the
// refusal is tested on the config alone: the tests bind only loopback.)
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
