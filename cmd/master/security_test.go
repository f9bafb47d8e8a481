package main

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/viper"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/videoshard/videoshard/grpcapi"
	"github.com/videoshard/videoshard/internal/testpki"
	pb "github.com/videoshard/videoshard/proto"
)

const testToken = "cmd-master-token-0123456789"

// serveSecure runs f behind mutual TLS (the test PKI) and the worker's
// token check.
func serveSecure(t *testing.T, f *fakeWorker, pki testpki.Files) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	auth, err := grpcapi.NewTokenAuth([]string{testToken})
	if err != nil {
		t.Fatal(err)
	}
	opts := append(grpcapi.ServerOptions(slog.New(slog.DiscardHandler), grpcapi.WithAuth(auth)),
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})))
	srv := grpc.NewServer(opts...)
	pb.RegisterVideoProcessingServiceServer(srv, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestSecurityFlags(t *testing.T) {
	pki := testpki.Generate(t)
	addr := serveSecure(t, &fakeWorker{healthy: true}, pki)
	tlsFlags := []string{"--worker", addr, "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey}

	if code, _, stderr := run(t, slices.Concat(tlsFlags, []string{"--token", testToken, "health"})...); code != exitOK {
		t.Fatalf("flags: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := run(t, slices.Concat(tlsFlags, []string{"--tls-server-name", "localhost", "--token", testToken, "list"})...); code != exitOK {
		t.Fatalf("--tls-server-name localhost: exit %d, stderr %q", code, stderr)
	}

	t.Setenv("VIDEOSHARD_MASTER_TOKEN", testToken)
	if code, _, stderr := run(t, slices.Concat(tlsFlags, []string{"health"})...); code != exitOK {
		t.Fatalf("token from env: exit %d, stderr %q", code, stderr)
	}
	os.Unsetenv("VIDEOSHARD_MASTER_TOKEN")

	config := filepath.Join(t.TempDir(), "master.yaml")
	yaml := "worker: " + addr + "\ntls_ca: " + pki.CA + "\ntls_cert: " + pki.ClientCert + "\ntls_key: " + pki.ClientKey +
		"\ntls_server_name: localhost\ntoken: " + testToken + "\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "--config", config, "health"); code != exitOK {
		t.Fatalf("config file: exit %d, stderr %q", code, stderr)
	}

	// Refusals: the worker's code, never the token.
	const wrong = "wrong-token-0123456789"
	fails := []struct {
		name string
		args []string
		want string
	}{
		{"no token", slices.Concat(tlsFlags, []string{"health"}), "authentication required: missing bearer token"},
		{"wrong token", slices.Concat(tlsFlags, []string{"--token", wrong, "health"}), "invalid bearer token (Unauthenticated)"},
		{"no client certificate", []string{"--worker", addr, "--tls-ca", pki.CA, "--token", testToken, "health"}, "(Unavailable)"},
		{"plaintext", []string{"--worker", addr, "--token", testToken, "health"}, "(Unavailable)"},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != exitFailure || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, exitFailure, tt.want)
			}
			if strings.Contains(stdout+stderr, testToken) || strings.Contains(stdout+stderr, wrong) {
				t.Fatalf("output shows the token:\n%s\n%s", stdout, stderr)
			}
		})
	}
}

func TestSecurityFlags_Usage(t *testing.T) {
	pki := testpki.Generate(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", pki.ClientCert, "health"}, "tls_key"},
		{"key without cert", []string{"--tls-key", pki.ClientKey, "health"}, "tls_cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d naming %s", code, stderr, exitUsage, tt.want)
			}
		})
	}
	// A CA file that is not there fails the command, naming the file.
	missing := filepath.Join(pki.Dir, "nope.pem")
	code, _, stderr := run(t, "--worker", "127.0.0.1:1", "--tls-ca", missing, "health")
	if code != exitFailure || !strings.Contains(stderr, missing) {
		t.Fatalf("missing CA: exit %d, stderr %q", code, stderr)
	}
	// The job commands read the same keys.
	code, _, stderr = run(t, "reconstruct", "--video-id", "v", "--output", filepath.Join(t.TempDir(), "o.mkv"),
		"--workers", "127.0.0.1:1", "--tls-cert", pki.ClientCert)
	if code != exitUsage || !strings.Contains(stderr, "tls_key") {
		t.Fatalf("reconstruct with --tls-cert alone: exit %d, stderr %q", code, stderr)
	}
}

func TestJobConfigDial(t *testing.T) {
	t.Setenv("VIDEOSHARD_MASTER_TOKEN", testToken)
	t.Setenv("VIDEOSHARD_MASTER_TLS_CA", "/etc/ca.pem")
	t.Setenv("VIDEOSHARD_MASTER_TLS_SERVER_NAME", "worker.internal")
	cfg, err := loadJobConfig(newViperWithJobDefaults())
	if err != nil {
		t.Fatal(err)
	}
	// MaxMessageBytes 0: the dispatcher's own (master.DefaultJobMessageBytes).
	d := cfg.job("in.mp4", "out.mkv").Dispatch.Dial
	if d.Insecure || d.CAFile != "/etc/ca.pem" || d.ServerName != "worker.internal" || d.Token != testToken || d.MaxMessageBytes != 0 {
		t.Fatalf("job dial options: insecure %v, CA %q, server name %q, token set %v, max %d",
			d.Insecure, d.CAFile, d.ServerName, d.Token == testToken, d.MaxMessageBytes)
	}

	os.Unsetenv("VIDEOSHARD_MASTER_TOKEN")
	os.Unsetenv("VIDEOSHARD_MASTER_TLS_CA")
	os.Unsetenv("VIDEOSHARD_MASTER_TLS_SERVER_NAME")
	cfg, err = loadJobConfig(newViperWithJobDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.job("in.mp4", "out.mkv").Dispatch.Dial; !d.Insecure || d.Token != "" {
		t.Fatalf("without TLS keys the master dials plaintext: %+v", d.Insecure)
	}
}

func newViperWithJobDefaults() *viper.Viper {
	v := newViper()
	for k, val := range jobDefaults() {
		v.SetDefault(k, val)
	}
	return v
}
