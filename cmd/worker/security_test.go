package main

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/internal/testpki"
)

const (
	tokA = "tok-a-0123456789abcdef"
	tokB = "tok-b-0123456789abcdef"
)

func TestSecurityConfigDefaults(t *testing.T) {
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.Enabled() || cfg.Auth.Enabled() || cfg.Insecure {
		t.Fatalf("security defaults: tls %+v auth %+v insecure %v; want all off", cfg.TLS, cfg.Auth, cfg.Insecure)
	}
}

func TestSecurityConfigKeys(t *testing.T) {
	yaml := `
listen: 0.0.0.0:50061
tls: {cert_file: /etc/w/cert.pem, key_file: /etc/w/key.pem, client_ca_file: /etc/w/ca.pem}
auth: {tokens: [` + tokA + `], tokens_file: /etc/w/tokens}
insecure: false
`
	cfg, err := parse(t, yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.TLS, (TLSConfig{CertFile: "/etc/w/cert.pem", KeyFile: "/etc/w/key.pem", ClientCAFile: "/etc/w/ca.pem"}); got != want {
		t.Errorf("tls = %+v, want %+v", got, want)
	}
	if got := cfg.Auth; strings.Join(got.Tokens, ",") != tokA || got.TokensFile != "/etc/w/tokens" {
		t.Errorf("auth = %d tokens, file %q", len(got.Tokens), got.TokensFile)
	}

	// The environment: a space-separated token list, insecure as a string.
	cfg, err = parse(t, "", map[string]string{
		"VIDEOSHARD_LISTEN":      "0.0.0.0:50061",
		"VIDEOSHARD_AUTH_TOKENS": tokA + " " + tokB,
		"VIDEOSHARD_INSECURE":    "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Auth.Tokens) != 2 || cfg.Auth.Tokens[1] != tokB || !cfg.Insecure {
		t.Errorf("from env: %d tokens, insecure %v", len(cfg.Auth.Tokens), cfg.Insecure)
	}
}

func TestSecurityConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantKey    string
	}{
		{"cert without key", "tls: {cert_file: c.pem}\n", "config key tls.key_file"},
		{"key without cert", "tls: {key_file: k.pem}\n", "config key tls.cert_file"},
		{"client CA without cert", "tls: {client_ca_file: ca.pem}\n", "config key tls.client_ca_file"},
		{"short token", "auth: {tokens: [" + tokA + ", short-secret]}\n", "config key auth.tokens: token 2 of 2: shorter than 16"},
		{"token with a space", "auth: {tokens: [\"secret with a space in\"]}\n", "config key auth.tokens: token 1 of 1"},
		{"tokens not a list", "auth: {tokens: {a: b}}\n", "auth.tokens"},
		{"insecure not a bool", "insecure: maybe\n", "config key insecure"},
		{"unknown tls key", "tls: {ca_file: x}\n", "tls.ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yaml, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("err = %v, want it to name %q", err, tt.wantKey)
			}
			if strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "secret with") {
				t.Fatalf("error %q quotes a token", err)
			}
		})
	}
}

// Beyond loopback the worker needs client certificates (mutual TLS),
// tokens or an explicit insecure: true, and says so: TLS alone lets every
// client in, like plaintext.
func TestListenBeyondLoopback(t *testing.T) {
	const serverTLS = "tls: {cert_file: c.pem, key_file: k.pem}\n"
	plain := []string{"config key listen", "not a loopback address", "anyone who can reach the port", "insecure: true", "tls.cert_file", "auth.tokens"}
	tlsAlone := []string{"config key listen", "not a loopback address", "TLS alone authenticates no client", "anyone who can reach the port",
		"insecure: true", "tls.client_ca_file", "auth.tokens"}
	type refusal struct {
		name, yaml string
		want       []string
	}
	var refused []refusal
	for _, listen := range []string{"0.0.0.0:50061", ":50061", "[::]:50061", "10.1.2.3:50061", "worker.example:50061", "[::ffff:10.0.0.1]:1"} {
		yaml := "listen: \"" + listen + "\"\n"
		refused = append(refused, refusal{listen, yaml, plain}, refusal{listen + " TLS alone", yaml + serverTLS, tlsAlone})
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yaml, nil)
			if err == nil {
				t.Fatal("want a refusal")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not say %q", err, want)
				}
			}
		})
	}
	accepted := []struct{ name, yaml string }{
		{"127.0.0.1", "listen: 127.0.0.1:50061\n"},
		{"127.8.9.10", "listen: 127.8.9.10:50061\n"},
		{"::1", "listen: \"[::1]:50061\"\n"},
		{"localhost", "listen: localhost:50061\n"},
		{"LocalHost", "listen: LocalHost:50061\n"},
		{"TLS alone on loopback", "listen: 127.0.0.1:50061\n" + serverTLS},
		{"insecure", "listen: 0.0.0.0:50061\ninsecure: true\n"},
		{"TLS alone, insecure", "listen: 0.0.0.0:50061\ninsecure: true\n" + serverTLS},
		{"mutual TLS", "listen: 0.0.0.0:50061\ntls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem}\n"},
		{"TLS and tokens", "listen: 0.0.0.0:50061\n" + serverTLS + "auth: {tokens: [" + tokA + "]}\n"},
		{"tokens", "listen: 0.0.0.0:50061\nauth: {tokens: [" + tokA + "]}\n"},
		{"tokens file", "listen: 0.0.0.0:50061\nauth: {tokens_file: /etc/tokens}\n"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parse(t, tt.yaml, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	// What the Docker image does.
	if _, err := parse(t, "", map[string]string{"VIDEOSHARD_LISTEN": "0.0.0.0:50061", "VIDEOSHARD_INSECURE": "true"}); err != nil {
		t.Fatalf("VIDEOSHARD_INSECURE=true: %v", err)
	}
}

func writeTokens(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadTokensFile(t *testing.T) {
	path := writeTokens(t, "# the masters\n\n  "+tokA+"  \n\t\n# retired: nothing\n"+tokB+"\n")
	got, err := readTokensFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != tokA || got[1] != tokB {
		t.Fatalf("tokens = %d %v", len(got), got[0] == tokA)
	}

	for name, body := range map[string]string{
		"empty":         "",
		"only comments": "# nothing\n\n",
		"short token":   tokA + "\n\nshort-secret\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readTokensFile(writeTokens(t, body))
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), "short-secret") {
				t.Fatalf("error %q quotes a token", err)
			}
			if name == "short token" && !strings.Contains(err.Error(), "line 3") {
				t.Fatalf("error %q does not give the line", err)
			}
		})
	}
}

func TestServerSecurity(t *testing.T) {
	pki := testpki.Generate(t)
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if creds, auth, err := serverSecurity(cfg); creds != nil || auth != nil || err != nil {
		t.Fatalf("defaults: %v %v %v; want plaintext, no auth", creds, auth, err)
	}

	cfg.TLS = TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA}
	cfg.Auth = AuthConfig{Tokens: []string{tokA}, TokensFile: writeTokens(t, tokB+"\n")}
	creds, auth, err := serverSecurity(cfg)
	if err != nil || creds == nil || auth == nil {
		t.Fatalf("serverSecurity = %v %v %v", creds, auth, err)
	}
	if got := creds.Info().SecurityProtocol; got != "tls" {
		t.Errorf("security protocol %q", got)
	}
	tc, err := serverTLS(cfg.TLS)
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS12 || tc.ClientAuth != tls.RequireAndVerifyClientCert || tc.ClientCAs == nil {
		t.Errorf("tls config: min %x, client auth %v", tc.MinVersion, tc.ClientAuth)
	}

	bad := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"missing cert", func(c *Config) { c.TLS.CertFile = filepath.Join(pki.Dir, "nope.pem") }, "tls.cert_file"},
		{"key of another cert", func(c *Config) { c.TLS.KeyFile = pki.ClientKey }, "tls.cert_file, tls.key_file"},
		{"missing client CA", func(c *Config) { c.TLS.ClientCAFile = filepath.Join(pki.Dir, "nope.pem") }, "tls.client_ca_file"},
		{"client CA not PEM", func(c *Config) { c.TLS.ClientCAFile = writeTokens(t, "not pem") }, "tls.client_ca_file"},
		{"missing tokens file", func(c *Config) { c.Auth.TokensFile = filepath.Join(pki.Dir, "nope") }, "auth.tokens_file"},
		{"empty tokens file", func(c *Config) { c.Auth.TokensFile = writeTokens(t, "# none\n") }, "auth.tokens_file"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.mutate(&c)
			if _, _, err := serverSecurity(c); err == nil || !strings.Contains(err.Error(), "config key "+tt.wantKey) {
				t.Fatalf("err = %v, want it to name %s", err, tt.wantKey)
			}
		})
	}
}

func TestWarnInsecure(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // "" for no warning
	}{
		{"loopback", "listen: 127.0.0.1:1\n", ""},
		{"insecure", "listen: 0.0.0.0:1\ninsecure: true\n", "without TLS or authentication"},
		{"tokens without TLS", "listen: 0.0.0.0:1\nauth: {tokens: [" + tokA + "]}\n", "bearer tokens travel in plaintext"},
		{"TLS alone, insecure", "listen: 0.0.0.0:1\ninsecure: true\ntls: {cert_file: c, key_file: k}\n", "TLS without client certificates or tokens"},
		{"mutual TLS", "listen: 0.0.0.0:1\ntls: {cert_file: c, key_file: k, client_ca_file: ca}\n", ""},
		{"TLS and tokens", "listen: 0.0.0.0:1\ntls: {cert_file: c, key_file: k}\nauth: {tokens: [" + tokA + "]}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.yaml, nil)
			if err != nil {
				t.Fatal(err)
			}
			var buf strings.Builder
			warnInsecure(slog.New(slog.NewTextHandler(&buf, nil)), cfg)
			if got := buf.String(); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("log %q, want %q", got, tt.want)
			}
			if strings.Contains(buf.String(), tokA) {
				t.Fatal("the warning shows the token")
			}
		})
	}
}
