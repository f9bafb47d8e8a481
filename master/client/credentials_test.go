package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/internal/testpki"
	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

const testToken = "master-test-token-0123456789"

// authWorker answers CheckHealth and remembers the authorization metadata
// of the last call.
type authWorker struct {
	pb.UnimplementedVideoProcessingServiceServer
	mu   sync.Mutex
	auth []string
}

func (w *authWorker) CheckHealth(ctx context.Context, _ *pb.HealthCheckRequest) (*pb.HealthCheckResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	w.mu.Lock()
	w.auth = md.Get("authorization")
	w.mu.Unlock()
	return &pb.HealthCheckResponse{IsHealthy: true, WorkerId: "auth-worker"}, nil
}

func (w *authWorker) lastAuth() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.auth
}

// serveTCP runs w on a loopback port, with TLS when tc is not nil.
func serveTCP(t *testing.T, w *authWorker, tc *tls.Config) string {
	t.Helper()
	var opts []grpc.ServerOption
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	srv := grpc.NewServer(opts...)
	pb.RegisterVideoProcessingServiceServer(srv, w)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// mutualTLS is the server side of mutual TLS with the test PKI.
func mutualTLS(t *testing.T, pki testpki.Files) *tls.Config {
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
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

func health(t *testing.T, addr string, opts client.DialOptions) error {
	t.Helper()
	c, err := client.Dial(t.Context(), addr, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = c.Health(ctx)
	return err
}

func TestDial_MutualTLSAndToken(t *testing.T) {
	pki := testpki.Generate(t)
	w := &authWorker{}
	addr := serveTCP(t, w, mutualTLS(t, pki))
	full := client.DialOptions{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, Token: testToken}

	if err := health(t, addr, full); err != nil {
		t.Fatalf("mutual TLS with token: %v", err)
	}
	if got := w.lastAuth(); len(got) != 1 || got[0] != "Bearer "+testToken {
		t.Fatalf("worker received authorization %q", got)
	}

	byName := full
	byName.ServerName = "localhost" // a DNS SAN of the test certificate
	if err := health(t, addr, byName); err != nil {
		t.Errorf("ServerName localhost: %v", err)
	}

	fails := map[string]client.DialOptions{
		"no client certificate":                    {CAFile: pki.CA, Token: testToken},
		"system roots only":                        {CertFile: pki.ClientCert, KeyFile: pki.ClientKey},
		"wrong server name":                        {CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, ServerName: "other.example"},
		"plaintext":                                {Insecure: true, Token: testToken},
		"zero options (TLS with the system roots)": {},
	}
	for name, opts := range fails {
		t.Run(name, func(t *testing.T) {
			if err := health(t, addr, opts); status.Code(err) != codes.Unavailable {
				t.Fatalf("err = %v, want Unavailable", err)
			}
		})
	}
}

// Over plaintext (loopback) the token is still sent: workers may use auth
// without TLS. Over a connection meant for TLS it is never sent in clear.
func TestDial_TokenPlaintext(t *testing.T) {
	w := &authWorker{}
	addr := serveTCP(t, w, nil)
	if err := health(t, addr, client.DialOptions{Insecure: true, Token: testToken}); err != nil {
		t.Fatal(err)
	}
	if got := w.lastAuth(); len(got) != 1 || got[0] != "Bearer "+testToken {
		t.Fatalf("worker received authorization %q", got)
	}
	if err := health(t, addr, client.DialOptions{Insecure: true}); err != nil || len(w.lastAuth()) != 0 {
		t.Fatalf("no token: err %v, authorization %q", err, w.lastAuth())
	}

	// TLS options whose transport credentials GRPCOptions replaces with
	// plaintext: gRPC refuses to carry the token.
	pki := testpki.Generate(t)
	_, err := client.Dial(t.Context(), addr, client.DialOptions{CAFile: pki.CA, Token: testToken,
		GRPCOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}})
	if err == nil || !strings.Contains(err.Error(), "transport level security") {
		t.Fatalf("token over a downgraded connection: err %v", err)
	}
}

func TestDial_ErrBadSecurityOptions(t *testing.T) {
	pki := testpki.Generate(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts client.DialOptions
		want string
	}{
		{"insecure with CA", client.DialOptions{Insecure: true, CAFile: pki.CA}, "cannot be combined"},
		{"insecure with server name", client.DialOptions{Insecure: true, ServerName: "x"}, "cannot be combined"},
		{"cert without key", client.DialOptions{CertFile: pki.ClientCert}, "both or neither"},
		{"key without cert", client.DialOptions{KeyFile: pki.ClientKey}, "both or neither"},
		{"missing CA", client.DialOptions{CAFile: filepath.Join(pki.Dir, "nope.pem")}, "CA file"},
		{"CA not PEM", client.DialOptions{CAFile: notPEM}, "no PEM certificate"},
		{"mismatched key", client.DialOptions{CertFile: pki.ClientCert, KeyFile: pki.ServerKey}, "client certificate"},
		{"token with a newline", client.DialOptions{Insecure: true, Token: testToken + "\n"}, "token: holds a space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Dial(t.Context(), "127.0.0.1:1", tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("error %q quotes the token", err)
			}
		})
	}
}
