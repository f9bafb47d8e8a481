package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc/credentials"

	"github.com/videoshard/videoshard/grpcapi"
)

// TLSConfig is the worker's transport security (keys tls.*). Empty files
// mean plaintext.
type TLSConfig struct {
	CertFile string // PEM certificate chain the worker presents
	KeyFile  string // PEM private key of CertFile
	// ClientCAFile, when set, turns on mutual TLS: every client must present
	// a certificate signed by one of these PEM CAs.
	ClientCAFile string
}

// Enabled reports whether the worker serves TLS.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" }

// AuthConfig is the bearer-token authentication (keys auth.*). With neither
// key set, calls are not authenticated.
type AuthConfig struct {
	Tokens     []string // accepted tokens, given inline
	TokensFile string   // file of more tokens, one a line; read at start
}

// Enabled reports whether calls must carry a token.
func (c AuthConfig) Enabled() bool { return len(c.Tokens) > 0 || c.TokensFile != "" }

// checkSecurity validates the tls.*, auth.* and insecure keys together with
// listen; it only reads values, the files are read by serverSecurity.
func checkSecurity(r *keyReader, cfg Config) {
	t := cfg.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		r.fail("tls.key_file", errors.New("empty, but tls.cert_file is set: set both or neither"))
	case t.CertFile == "" && t.KeyFile != "":
		r.fail("tls.cert_file", errors.New("empty, but tls.key_file is set: set both or neither"))
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		r.fail("tls.client_ca_file", errors.New("mutual TLS needs the worker's own tls.cert_file and tls.key_file"))
	}
	for _, err := range grpcapi.CheckTokens(cfg.Auth.Tokens) {
		r.fail("auth.tokens", err)
	}
	// Beyond loopback a client must prove who it is: a certificate (mutual
	// TLS) or a token. TLS alone encrypts, but lets every client in.
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil || cfg.Insecure || cfg.Auth.Enabled() || t.ClientCAFile != "" || isLoopback(host) {
		return
	}
	if t.Enabled() {
		r.fail("listen", fmt.Errorf("%q is not a loopback address, and TLS is configured without client certificates "+
			"(tls.client_ca_file) or authentication (auth.tokens or auth.tokens_file): TLS alone authenticates no "+
			"client, so anyone who can reach the port could submit, read and list shards. Set tls.client_ca_file "+
			"(mutual TLS) and/or auth.tokens, listen on 127.0.0.1, or set insecure: true (VIDEOSHARD_INSECURE=true) "+
			"if the network itself is trusted", cfg.Listen))
		return
	}
	r.fail("listen", fmt.Errorf("%q is not a loopback address, and neither TLS (tls.cert_file, tls.key_file) "+
		"nor authentication (auth.tokens or auth.tokens_file) is configured: anyone who can reach the port could "+
		"submit, read and list shards. Configure tls.* and/or auth.*, listen on 127.0.0.1, "+
		"or set insecure: true (VIDEOSHARD_INSECURE=true) if the network itself is trusted", cfg.Listen))
}

// isLoopback reports whether host names only this machine: localhost, or an
// address in 127.0.0.0/8 or ::1. An empty host, 0.0.0.0 and :: listen on
// every interface, so they are not.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serverSecurity reads the files the config names and returns the server's
// transport credentials (nil: plaintext) and its authentication (nil: none).
// Errors name the key.
func serverSecurity(cfg Config) (credentials.TransportCredentials, *grpcapi.TokenAuth, error) {
	var creds credentials.TransportCredentials
	if cfg.TLS.Enabled() {
		tc, err := serverTLS(cfg.TLS)
		if err != nil {
			return nil, nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	if !cfg.Auth.Enabled() {
		return creds, nil, nil
	}
	tokens := cfg.Auth.Tokens
	if cfg.Auth.TokensFile != "" {
		more, err := readTokensFile(cfg.Auth.TokensFile)
		if err != nil {
			return nil, nil, fmt.Errorf("config key auth.tokens_file: %w", err)
		}
		tokens = append(append([]string(nil), tokens...), more...)
	}
	auth, err := grpcapi.NewTokenAuth(tokens)
	if err != nil {
		return nil, nil, fmt.Errorf("config key auth.tokens: %w", err)
	}
	return creds, auth, nil
}

// serverTLS loads the worker's key pair and, for mutual TLS, the client CAs.
// TLS 1.3 is negotiated whenever the client speaks it; 1.2 is the floor.
func serverTLS(c TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("config key tls.cert_file, tls.key_file: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("config key tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config key tls.client_ca_file: %s holds no PEM certificate", c.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// readTokensFile reads one token a line; blank lines and lines starting
// with # are skipped, surrounding spaces trimmed. A file with no token is an
// error: it would silently leave the worker open. Errors give line numbers,
// never tokens.
func readTokensFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var tokens []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := grpcapi.CheckToken(line); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		tokens = append(tokens, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return tokens, nil
}

// securityMode describes the worker's protection for its start-up line.
func securityMode(cfg Config) (tlsMode, authMode string) {
	tlsMode, authMode = "off", "off"
	if cfg.TLS.Enabled() {
		tlsMode = "on"
		if cfg.TLS.ClientCAFile != "" {
			tlsMode = "mutual"
		}
	}
	if cfg.Auth.Enabled() {
		authMode = "bearer"
	}
	return tlsMode, authMode
}

// warnInsecure logs what an operator listening beyond loopback should know:
// that the port is open to anyone (insecure: true, with or without TLS), or
// that tokens cross the network in clear text (auth without TLS).
func warnInsecure(log *slog.Logger, cfg Config) {
	host, _, _ := net.SplitHostPort(cfg.Listen)
	switch {
	case isLoopback(host), cfg.TLS.ClientCAFile != "":
	case cfg.Auth.Enabled() && !cfg.TLS.Enabled():
		log.Warn("bearer tokens travel in plaintext: configure tls.cert_file and tls.key_file unless a trusted network or proxy protects the port",
			"listen", cfg.Listen)
	case cfg.Auth.Enabled():
	case cfg.TLS.Enabled():
		log.Warn("insecure: true: serving TLS without client certificates or tokens beyond loopback; anyone who can reach the port can use the worker",
			"listen", cfg.Listen)
	default:
		log.Warn("insecure: true: serving without TLS or authentication beyond loopback; anyone who can reach the port can use the worker",
			"listen", cfg.Listen)
	}
}
