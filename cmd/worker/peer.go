package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cast"

	"github.com/videoshard/videoshard/grpcapi"
)

// PeerConfig is what the keys peer.* set beside grpcapi.PeerConfig (which
// holds the rest, in Config.Server.Peer).
type PeerConfig struct {
	// TokenFile holds the bearer token sent to peers (its one token line;
	// # comments and blank lines skipped), read at start.
	TokenFile string
}

// peerKeys are the keys peer.* and labels.
func peerKeys(cfg *Config) []key {
	p := &cfg.Server.Peer
	return []key{
		{name: "peer.allow", def: p.Allow.Entries(), read: func(r *keyReader, k string) {
			allow, err := grpcapi.ParsePeerAllow(r.strings(k))
			if err != nil {
				r.fail(k, err)
				return
			}
			p.Allow = allow
		}},
		intKey("peer.max_concurrent_replications", &p.MaxConcurrent),
		durationKey("peer.idle_timeout", &p.IdleTimeout),
		durationKey("peer.timeout", &p.Timeout),
		stringKey("peer.tls.ca_file", &p.CAFile),
		stringKey("peer.tls.cert_file", &p.CertFile),
		stringKey("peer.tls.key_file", &p.KeyFile),
		stringKey("peer.tls.server_name", &p.ServerName),
		stringKey("peer.token", &p.Token),
		stringKey("peer.token_file", &cfg.Peer.TokenFile),
		{name: "labels", def: map[string]string{}, read: func(r *keyReader, k string) {
			cfg.Server.Labels = r.labels(k)
		}},
	}
}

// labelsKeyPrefix starts the file keys a labels map gives (labels.zone):
// they are labels, not unknown keys.
const labelsKeyPrefix = "labels."

// labels reads a map of labels: from the file a YAML map (its keys lower
// case, as viper reads every key), from the environment "zone=a,host=h1".
func (r *keyReader) labels(key string) map[string]string {
	raw := r.v.Get(key)
	if s, ok := raw.(string); ok {
		m := map[string]string{}
		for _, kv := range strings.Split(s, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				r.fail(key, fmt.Errorf("%q is not name=value", kv))
				return nil
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		raw = m
	}
	m, err := cast.ToStringMapStringE(raw)
	if err != nil {
		r.fail(key, fmt.Errorf("%v is not a map of names to values", raw))
		return nil
	}
	if err := grpcapi.CheckLabels(m); err != nil {
		r.fail(key, err)
		return nil
	}
	return m
}

// checkPeers validates the peer.* keys together; the files are read by
// peerSecurity.
func checkPeers(r *keyReader, cfg Config) {
	p := cfg.Server.Peer
	r.check("peer.max_concurrent_replications", p.MaxConcurrent >= 1, "must be at least 1")
	r.check("peer.idle_timeout", p.IdleTimeout > 0, "must be positive: a peer that stalls would hold a replication for ever")
	r.check("peer.timeout", p.Timeout > 0, "must be positive")
	r.check("peer.idle_timeout", p.IdleTimeout <= p.Timeout, "must not exceed peer.timeout")
	switch {
	case p.CertFile != "" && p.KeyFile == "":
		r.fail("peer.tls.key_file", errors.New("empty, but peer.tls.cert_file is set: set both or neither"))
	case p.CertFile == "" && p.KeyFile != "":
		r.fail("peer.tls.cert_file", errors.New("empty, but peer.tls.key_file is set: set both or neither"))
	}
	if p.Token != "" && cfg.Peer.TokenFile != "" {
		r.fail("peer.token", errors.New("set peer.token or peer.token_file, not both"))
	}
	if p.Token != "" {
		if err := grpcapi.CheckToken(p.Token); err != nil {
			r.fail("peer.token", err)
		}
	}
}

// peerTLS reports whether peers are dialled over TLS: when any peer.tls.*
// key is set, as the master dials TLS when any of its TLS flags is.
func peerTLS(p grpcapi.PeerConfig) bool {
	return p.CAFile != "" || p.CertFile != "" || p.ServerName != ""
}

// peerSecurity reads the peer token file and checks the peer TLS files,
// returning the peer configuration a server runs with. Errors name the
// key.
func peerSecurity(cfg Config) (grpcapi.PeerConfig, error) {
	p := cfg.Server.Peer
	p.TLS = peerTLS(p)
	if cfg.Peer.TokenFile != "" {
		tokens, err := readTokensFile(cfg.Peer.TokenFile)
		if err != nil {
			return p, fmt.Errorf("config key peer.token_file: %w", err)
		}
		if len(tokens) != 1 {
			return p, fmt.Errorf("config key peer.token_file: %s holds %d tokens; a worker sends one", cfg.Peer.TokenFile, len(tokens))
		}
		p.Token = tokens[0]
	}
	if err := p.CheckCredentials(); err != nil {
		return p, fmt.Errorf("config key peer.tls.*: %w", err)
	}
	return p, nil
}
