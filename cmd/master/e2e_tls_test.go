package main

// End-to-end test of transport security: the real worker with mutual TLS
// and bearer tokens, driven over gRPC and by the real master binary.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/e2etest"
	"github.com/videoshard/videoshard/internal/testpki"
	pb "github.com/videoshard/videoshard/proto"
)

func TestE2EMutualTLSAndToken(t *testing.T) {
	const token = "e2e-worker-token-0123456789abcdef"
	pki := testpki.Generate(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# masters\n"+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := "encoder: simulated\n" +
		"tls: {cert_file: " + pki.ServerCert + ", key_file: " + pki.ServerKey + ", client_ca_file: " + pki.CA + "}\n" +
		"auth: {tokens_file: " + tokens + "}\n"
	// w.Conn: mutual TLS, no token.
	w := e2etest.StartWorker(t, bins["worker"], "", "", yaml,
		grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(t, true))))
	if logs := w.Logs.String(); !strings.Contains(logs, "tls=mutual") || !strings.Contains(logs, "auth=bearer") {
		t.Errorf("the start-up line does not show the security:\n%s", logs)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	withToken := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	dial := func(creds credentials.TransportCredentials) pb.VideoProcessingServiceClient {
		conn, err := grpc.NewClient(w.Addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return pb.NewVideoProcessingServiceClient(conn)
	}

	t.Run("plaintext client fails", func(t *testing.T) {
		_, err := dial(insecure.NewCredentials()).ListShards(withToken, &pb.ListShardsRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("err = %v, want Unavailable", err)
		}
	})
	t.Run("TLS without client certificate fails", func(t *testing.T) {
		_, err := dial(credentials.NewTLS(pki.ClientTLS(t, false))).ListShards(withToken, &pb.ListShardsRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("err = %v, want Unavailable", err)
		}
	})
	t.Run("mutual TLS without token is Unauthenticated", func(t *testing.T) {
		_, err := w.Client.ListShards(ctx, &pb.ListShardsRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("err = %v, want Unauthenticated", err)
		}
		_, err = w.Client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "nope.mp4", ChunkData: []byte("x")})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("ProcessChunk: err = %v, want Unauthenticated", err)
		}
	})
	t.Run("mutual TLS with token works", func(t *testing.T) {
		resp, err := w.Client.ProcessChunk(withToken, &pb.ProcessChunkRequest{VideoId: "tls.mp4", ChunkIndex: 0,
			ChunkData: []byte(strings.Repeat("chunk bytes ", 1000))})
		if err != nil || !resp.GetSuccess() {
			t.Fatalf("ProcessChunk = %v, %v", resp, err)
		}
		list, err := w.Client.ListShards(withToken, &pb.ListShardsRequest{VideoId: "tls.mp4"})
		if err != nil || len(list.GetVideos()) != 1 || len(list.GetVideos()[0].GetChunks()) != 1 {
			t.Fatalf("ListShards = %v, %v", list, err)
		}
	})
	t.Run("standard health needs no token", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(w.Conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check = %v, %v", resp, err)
		}
	})

	tlsFlags := []string{"--worker", w.Addr, "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey}
	t.Run("master health", func(t *testing.T) {
		code, stdout, stderr := runMaster(t, append(append([]string{}, tlsFlags...), "--token", token, "health")...)
		if code != 0 {
			t.Fatalf("master health exited %d\n%s\n%s", code, stdout, stderr)
		}
		code, stdout, stderr = runMaster(t, append(append([]string{}, tlsFlags...), "health")...)
		if code != exitFailure || !strings.Contains(stderr, "(Unauthenticated)") {
			t.Fatalf("master health without token exited %d\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("master encode", func(t *testing.T) {
		dir := t.TempDir()
		args := append(append([]string{"encode"}, tlsFlags[2:]...), "--workers", w.Addr,
			"--output", filepath.Join(dir, "out.mkv"), "--segment-seconds", "1", "--state-dir", filepath.Join(dir, "state"),
			"--video-id", "tls-encode", testdata("h264_aac_640x360_30fps_4s.mp4"))
		t.Setenv("VIDEOSHARD_MASTER_TOKEN", token) // the environment, as operators should pass it
		code, stdout, stderr := runMaster(t, args...)
		if code != 0 {
			t.Fatalf("master encode exited %d\n%s\n%s", code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, token) {
			t.Fatalf("the master printed the token:\n%s\n%s", stdout, stderr)
		}
	})

	if strings.Contains(w.Logs.String(), token) {
		t.Errorf("the worker logged the token:\n%s", w.Logs)
	}
}
