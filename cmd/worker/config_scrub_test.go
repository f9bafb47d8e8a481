package main

import (
	"strings"
	"testing"
	"time"
)

func TestConfigScrubKeys(t *testing.T) {
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.ScrubInterval != 0 || cfg.Storage.Scrub.BytesPerSecond != 0 {
		t.Fatalf("scrub defaults = %v, %d; want off and unlimited", cfg.Storage.ScrubInterval, cfg.Storage.Scrub.BytesPerSecond)
	}
	cfg, err = parse(t, "storage: {root: /tmp/s, scrub_interval: 6h, scrub_bytes_per_second: 50MiB}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.ScrubInterval != 6*time.Hour || cfg.Storage.Scrub.BytesPerSecond != 50<<20 {
		t.Fatalf("scrub keys = %v, %d; want 6h, 50MiB", cfg.Storage.ScrubInterval, cfg.Storage.Scrub.BytesPerSecond)
	}
	for _, tt := range []struct{ yaml, key string }{
		{"storage: {scrub_interval: -1s}\n", "storage.scrub_interval"},
		{"storage: {scrub_interval: daily}\n", "storage.scrub_interval"},
		{"storage: {scrub_bytes_per_second: fast}\n", "storage.scrub_bytes_per_second"},
		{"storage: {scrub_bytes_per_second: -5}\n", "storage.scrub_bytes_per_second"},
	} {
		_, err := parse(t, tt.yaml, nil)
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: error %v does not name %s", tt.yaml, err, tt.key)
		}
	}
	// Last: t.Setenv lasts for the rest of the test.
	cfg, err = parse(t, "", map[string]string{"VIDEOSHARD_STORAGE_SCRUB_INTERVAL": "90s", "VIDEOSHARD_STORAGE_SCRUB_BYTES_PER_SECOND": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.ScrubInterval != 90*time.Second || cfg.Storage.Scrub.BytesPerSecond != 1000 {
		t.Fatalf("scrub keys from the environment = %v, %d", cfg.Storage.ScrubInterval, cfg.Storage.Scrub.BytesPerSecond)
	}
}
