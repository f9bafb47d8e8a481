package main

import (
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigPeers(t *testing.T) {
	cfg, err := parse(t, `
peer:
  allow: [10.0.0.0/24, "10.1.0.5:50061"]
  max_concurrent_replications: 4
  idle_timeout: 5s
  timeout: 1m
  tls: {ca_file: ca.pem, server_name: workers.internal}
  token: abcdefghijklmnopqrstuvwxyz
labels: {Zone: eu-1a, host: h1}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Server.Peer
	if !p.Allow.Allows(netip.MustParseAddrPort("10.0.0.9:1")) || !p.Allow.Allows(netip.MustParseAddrPort("10.1.0.5:50061")) ||
		p.Allow.Allows(netip.MustParseAddrPort("127.0.0.1:1")) {
		t.Errorf("peer.allow read as %v", p.Allow.Entries())
	}
	if p.MaxConcurrent != 4 || p.IdleTimeout != 5*time.Second || p.Timeout != time.Minute ||
		p.CAFile != "ca.pem" || p.ServerName != "workers.internal" || !peerTLS(p) {
		t.Errorf("peer config %+v", p)
	}
	if want := map[string]string{"zone": "eu-1a", "host": "h1"}; !maps.Equal(cfg.Server.Labels, want) {
		t.Errorf("labels %v, want %v", cfg.Server.Labels, want)
	}

	def, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := def.Server.Peer.Allow.Entries(); strings.Join(got, ",") != "127.0.0.0/8,::1" || peerTLS(def.Server.Peer) {
		t.Errorf("default peer.allow %v, TLS %v", got, peerTLS(def.Server.Peer))
	}

	env, err := parse(t, "", map[string]string{"VIDEOSHARD_LABELS": "zone=b, host=h2", "VIDEOSHARD_PEER_ALLOW": "10.0.0.1 10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"zone": "b", "host": "h2"}; !maps.Equal(env.Server.Labels, want) {
		t.Errorf("labels from the environment %v, want %v", env.Server.Labels, want)
	}
	if !env.Server.Peer.Allow.Allows(netip.MustParseAddrPort("10.0.0.2:7")) {
		t.Errorf("peer.allow from the environment: %v", env.Server.Peer.Allow.Entries())
	}
}

func TestConfigPeersRefused(t *testing.T) {
	for yaml, key := range map[string]string{
		"peer: {allow: [worker-2:50061]}\n":                      "peer.allow",
		"peer: {allow: [10.0.0.0/40]}\n":                         "peer.allow",
		"peer: {allow: 5}\n":                                     "peer.allow",
		"peer: {max_concurrent_replications: 0}\n":               "peer.max_concurrent_replications",
		"peer: {idle_timeout: 0s}\n":                             "peer.idle_timeout",
		"peer: {timeout: -1s}\n":                                 "peer.timeout",
		"peer: {idle_timeout: 2m, timeout: 1m}\n":                "peer.idle_timeout",
		"peer: {tls: {cert_file: c.pem}}\n":                      "peer.tls.key_file",
		"peer: {tls: {key_file: k.pem}}\n":                       "peer.tls.cert_file",
		"peer: {token: short}\n":                                 "peer.token",
		"peer: {token: abcdefghijklmnopq, token_file: /tmp/t}\n": "peer.token",
		"peer: {unknown: 1}\n":                                   "peer.unknown",
		"labels: {zone: \"a b\"}\n":                              "labels",
		"labels: {zone: \"\"}\n":                                 "labels",
		"labels: [a, b]\n":                                       "labels",
		"labels: {zone: {nested: x}}\n":                          "labels",
		"labels: {" + strings.Repeat("k", 64) + ": v}\n":         "labels",
		"labels: {zone: " + strings.Repeat("v", 64) + "}\n":      "labels",
		"labels: \"zone\"\n":                                     "labels",
	} {
		_, err := parse(t, yaml, nil)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v, want an error naming %s", yaml, err, key)
		}
	}
}
