package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// transportCredentials builds what DialOptions asks for: plaintext, or TLS
// with the given CA, client certificate and server name.
func (o DialOptions) transportCredentials() (credentials.TransportCredentials, error) {
	withTLS := o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.ServerName != ""
	if o.Insecure {
		if withTLS {
			return nil, errors.New("plaintext (Insecure) cannot be combined with CAFile, CertFile, KeyFile or ServerName")
		}
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case o.CertFile != "" || o.KeyFile != "":
		return nil, errors.New("CertFile and KeyFile go together: set both or neither")
	}
	return credentials.NewTLS(tc), nil
}

// bearerToken sends a worker token with every call. It implements
// credentials.PerRPCCredentials.
type bearerToken struct {
	token string
	// tls makes gRPC refuse to send the token on a connection without
	// transport security, so that a dial meant for TLS never leaks it.
	tls bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.tls }

// String keeps the token out of logs and %v.
func (b bearerToken) String() string { return "bearer token (redacted)" }
