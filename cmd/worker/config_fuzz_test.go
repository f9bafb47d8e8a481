package main

import (
	"math"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
)

// FuzzConfig feeds arbitrary YAML to readConfigFile and loadConfig, the
// worker's config path. Neither may panic; a refusal must name a config
// key or say the file does not parse; an accepted config must satisfy
// every documented bound, be accepted by the simulated encoder's own
// validation, and load the same way twice.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"encoder: simulated\n",
		"listen: 127.0.0.1:0\nencoder: simulated\nstorage: {root: /tmp/x}\nsimulated: {ratio: 0.25, delay: 200ms}\n",
		"limits: {max_concurrent_tasks: 3, max_queued_tasks: 0, max_chunk_bytes: 64MiB}\ngrpc: {max_message_bytes: 1073741824}\n",
		"ffmpeg: {video_codec: libx265, crf: 28, timeout: 90s, extra_output_args: [\"-tune\", \"film\"]}\n",
		"simulated: {ratio: .nan}\n", "simulated: {ratio: .inf}\n", "simulated: {ratio: 0}\n", "simulated: {ratio: 1e-320}\n",
		"shutdown_grace: -1s\n", "shutdown_grace: 9999999999h\n", "shutdown_grace: 5\n",
		"limits: {max_chunk_bytes: 9223372036854775807GiB}\n", "limits: {max_chunk_bytes: -1}\n", "limits: {max_chunk_bytes: 1.5}\n",
		"limits: {max_concurrent_tasks: 9223372036854775808}\n", "limits: {max_concurrent_tasks: \"8\"}\n",
		"grpc: {max_message_bytes: 2GiB}\n", "grpc: {max_message_bytes: 1MiB}\n", "grpc: {max_message_bytes: 1048575}\n",
		"listen: \"[::1]:0\"\n", "listen: localhost\n", "listen: [1, 2]\n", "listen: {a: b}\n", "listen: ~\n",
		"storage: x\n", "storage: {root: \"\"}\n", "storage: {root: \"  \"}\n", "unknown: 1\n", "storage: {root: /x, extra: 1}\n",
		"encoder: FFMPEG\n", "encoder: [simulated]\n", "ffmpeg: {extra_output_args: \"-x\"}\n", "ffmpeg: {extra_output_args: [{a: 1}]}\n",
		"ffmpeg: {threads: -1}\n", "ffmpeg: {crf: 0x10}\n", "ffmpeg: {timeout: 0}\n",
		"ffmpeg: {measure_quality: true}\n", "ffmpeg: {measure_quality: 2}\n", "ffmpeg: {measure_quality: \"yes\"}\n",
		"a: &x [*x]\n", "? [a, b]\n: c\n", "1: 2\n", "{\"listen\": 1}", "--- \n...\n", "- a\n- b\n", "\t", "\xff",
		"storage:\n  root: /x\nstorage:\n  root: /y\n", "Encoder: simulated\n", "ENCODER: simulated\n", "storage.root: /x\n",
		"ffmpeg: {allow_overrides: {video_codecs: [libx265], presets: [fast], crf: 18-30}}\n",
		"ffmpeg: {allow_overrides: {crf: 30-18}}\n", "ffmpeg: {allow_overrides: {crf: \"-\"}}\n", "ffmpeg: {allow_overrides: {crf: 5}}\n",
		"ffmpeg: {allow_overrides: [libx265]}\n", "ffmpeg: {allow_overrides: {presets: fast}}\n",
		"limits: {max_frame_pixels: 2147483647, max_pixels_per_second: 0, max_chunk_pixels: 9223372036854775807}\n",
		"limits: {max_frame_pixels: 2147483648}\n", "limits: {max_chunk_pixels: -1}\n", "limits: {max_pixels_per_second: 1e9}\n",
		"peer: {allow: [10.0.0.0/8, \"[fd00::1]:5\", 1.2.3.4], max_concurrent_replications: 3, idle_timeout: 1s, timeout: 2s}\n",
		"peer: {allow: [host:1]}\n", "peer: {allow: \"10.0.0.1\"}\n", "peer: {allow: [\"::ffff:1.2.3.4/120\"]}\n", "peer: {allow: []}\n",
		"peer: {tls: {ca_file: a, server_name: b}, token: abcdefghijklmnopqr}\n", "peer: {token: \"abc def ghi jkl mno\"}\n",
		"labels: {zone: a, host: h-1.x_y}\n", "labels: {ZONE: A}\n", "labels: {zone: 1}\n", "labels: {zone: true}\n",
		"labels: {zone: \"\\u00e9\"}\n", "labels: {\"a.b\": c}\n", "labels: {a: {b: c}}\n", "labels: ~\n", "labels: \"a=b,c=d\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, yaml string) {
		cfg, err := fuzzLoad(yaml)
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, "config key ") && !strings.Contains(msg, "config: unknown key ") &&
				!strings.HasPrefix(msg, "parse config: ") {
				t.Fatalf("config %q refused without naming a key: %v", yaml, err)
			}
			return
		}
		if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
			t.Errorf("listen %q is not host:port", cfg.Listen)
		}
		if strings.TrimSpace(cfg.Storage.Root) == "" {
			t.Errorf("storage.root %q is empty", cfg.Storage.Root)
		}
		if cfg.Encoder != "ffmpeg" && cfg.Encoder != "simulated" {
			t.Errorf("encoder %q", cfg.Encoder)
		}
		for key, d := range map[string]time.Duration{
			"shutdown_grace": cfg.ShutdownGrace, "ffmpeg.timeout": cfg.FFmpeg.Timeout, "simulated.delay": cfg.Simulated.Delay,
		} {
			if d < 0 {
				t.Errorf("%s = %v, negative", key, d)
			}
		}
		if cfg.FFmpeg.Threads < 0 {
			t.Errorf("ffmpeg.threads = %d, negative", cfg.FFmpeg.Threads)
		}
		if r := cfg.Simulated.Ratio; !(r > 0 && r <= 1) || math.IsNaN(r) {
			t.Errorf("simulated.ratio = %v, outside (0, 1]", r)
		}
		if s := cfg.Server; s.MaxConcurrentTasks < 1 || s.MaxQueuedTasks < 0 || s.MaxChunkBytes < 1 {
			t.Errorf("limits = %+v", s)
		}
		if l := cfg.FFmpeg.Limits; l.FramePixels < 0 || l.FramePixels > math.MaxInt32 || l.PixelsPerSecond < 0 || l.ChunkPixels < 0 {
			t.Errorf("pixel limits = %+v", l)
		}
		if r := cfg.FFmpeg.AllowOverrides.CRF; r != nil && (r.Min < 0 || r.Min > r.Max) {
			t.Errorf("ffmpeg.allow_overrides.crf = %+v", *r)
		}
		if n := cfg.Server.MaxMessageBytes; n < 1<<20 || n > 2<<30-1 {
			t.Errorf("grpc.max_message_bytes = %d, outside [1MiB, 2GiB)", n)
		}
		if err := grpcapi.CheckLabels(cfg.Server.Labels); err != nil {
			t.Errorf("accepted labels %q: %v", cfg.Server.Labels, err)
		}
		if p := cfg.Server.Peer; p.Allow == nil || p.MaxConcurrent < 1 || p.IdleTimeout <= 0 || p.IdleTimeout > p.Timeout {
			t.Errorf("peer config %+v", p)
		}
		if _, err := encode.NewSimulated(cfg.Simulated); err != nil {
			t.Errorf("accepted config is refused by the simulated encoder: %v", err)
		}
		again, err := fuzzLoad(yaml)
		if err != nil || !reflect.DeepEqual(cfg, again) {
			t.Errorf("loading %q twice differs: %+v then %+v (%v)", yaml, cfg, again, err)
		}
		if t.Failed() {
			t.Logf("config: %q", yaml)
		}
	})
}

func fuzzLoad(yaml string) (Config, error) {
	v := newViper()
	if err := readConfigFile(v, strings.NewReader(yaml)); err != nil {
		return Config{}, err
	}
	return loadConfig(v)
}
