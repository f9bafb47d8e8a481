package main

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
)

func parse(t *testing.T, yaml string, env map[string]string) (Config, error) {
	t.Helper()
	for k, val := range env {
		t.Setenv(k, val)
	}
	v := newViper()
	if yaml != "" {
		if err := readConfigFile(v, strings.NewReader(yaml)); err != nil {
			return Config{}, err
		}
	}
	return loadConfig(v)
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Listen, "127.0.0.1:50061"; got != want {
		t.Errorf("listen = %q, want %q", got, want)
	}
	if cfg.Server.WorkerID != "" {
		t.Errorf("worker_id = %q, want empty (the bound address at start)", cfg.Server.WorkerID)
	}
	if cfg.Encoder != "ffmpeg" || cfg.FFmpeg.VideoCodec != "libx264" || cfg.FFmpeg.Container != "matroska" {
		t.Errorf("encoder defaults = %q %q %q", cfg.Encoder, cfg.FFmpeg.VideoCodec, cfg.FFmpeg.Container)
	}
	if got, want := cfg.Server.MaxMessageBytes, 64<<20; got != want {
		t.Errorf("grpc.max_message_bytes = %d, want %d", got, want)
	}
	if got, want := cfg.Server.MaxChunkBytes, int64(4<<30); got != want {
		t.Errorf("limits.max_chunk_bytes = %d, want %d", got, want)
	}
	if got, want := cfg.Server.HealthTTL, 30*time.Second; got != want {
		t.Errorf("health.ttl = %s, want %s", got, want)
	}
	if cfg.Server.MaxConcurrentTasks < 1 || cfg.Simulated.Ratio != 0.5 {
		t.Errorf("limits/simulated defaults = %+v %+v", cfg.Server, cfg.Simulated)
	}
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"limits.max_unary_chunks", cfg.Server.MaxUnaryChunks, 0},
		{"limits.max_uploads", cfg.Server.MaxUploads, 0},
		{"limits.max_read_bytes", cfg.Server.MaxReadBytes, int64(0)},
		{"limits.upload_idle_timeout", cfg.Server.UploadIdleTimeout, 30 * time.Second},
		{"limits.upload_timeout", cfg.Server.UploadTimeout, 10 * time.Minute},
		{"grpc.max_concurrent_streams", cfg.Server.MaxConcurrentStreams, uint32(100)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
}

// With nothing set, every key reads back as the default it was given:
// the core packages' defaults (encode.DefaultFFmpegConfig,
// grpcapi.DefaultConfig, ...), which hold the values the keys document.
func TestConfigDefaultsAreTheCores(t *testing.T) {
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	// Unset lists read as empty, not nil.
	want.FFmpeg.ExtraOutputArgs = []string{}
	want.FFmpeg.AllowOverrides = encode.OverridePolicy{VideoCodecs: []string{}, Presets: []string{}}
	want.Auth.Tokens = []string{}
	want.Server.Labels = map[string]string{}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults read back as\n%+v\nwant\n%+v", cfg, want)
	}
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"ffmpeg.binary", cfg.FFmpeg.Binary, "ffmpeg"},
		{"ffmpeg.ffprobe", cfg.FFmpeg.FFprobe, "ffprobe"},
		{"ffmpeg.audio_codec", cfg.FFmpeg.AudioCodec, "copy"},
		{"ffmpeg.crf", cfg.FFmpeg.CRF, 0},
		{"ffmpeg.preset", cfg.FFmpeg.Preset, ""},
		{"ffmpeg.timeout", cfg.FFmpeg.Timeout, 10 * time.Minute},
		{"ffmpeg.allow_overrides.crf", cfg.FFmpeg.AllowOverrides.CRF, (*encode.CRFRange)(nil)},
		{"grpc.max_message_bytes", cfg.Server.MaxMessageBytes, pb.DefaultMaxMessageBytes},
		{"limits.max_concurrent_tasks", cfg.Server.MaxConcurrentTasks, runtime.NumCPU()},
		{"simulated.delay", cfg.Simulated.Delay, time.Duration(0)},
		{"shutdown_grace", cfg.ShutdownGrace, 30 * time.Second},
		{"storage.root", cfg.Storage.Root, "./video_shards"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
}

// configs/worker.yaml shows every key with its default, but for
// limits.max_concurrent_tasks, whose default is the machine's CPU count.
func TestShippedConfigShowsTheDefaults(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "configs", "worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := newViper()
	if err := readConfigFile(v, f); err != nil {
		t.Fatal(err)
	}
	shipped, err := loadConfig(v)
	if err != nil {
		t.Fatal(err)
	}
	def, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	def.Server.MaxConcurrentTasks = shipped.Server.MaxConcurrentTasks
	if !reflect.DeepEqual(shipped, def) {
		t.Fatalf("configs/worker.yaml reads as\n%+v\nthe defaults are\n%+v", shipped, def)
	}
}

func TestConfigLayers(t *testing.T) {
	yaml := `
encoder: simulated
worker_id: w1
storage: {root: /tmp/store}
ffmpeg: {video_codec: libx265, crf: 28, timeout: 90s, extra_output_args: ["-tune", "film"]}
simulated: {ratio: 0.25, delay: 200ms}
limits: {max_concurrent_tasks: 3, max_chunk_bytes: 64MiB}
grpc: {max_message_bytes: 1073741824}
health: {ttl: 2s}
`
	cfg, err := parse(t, yaml, map[string]string{
		"VIDEOSHARD_FFMPEG_VIDEO_CODEC":          "libvpx-vp9",
		"VIDEOSHARD_LIMITS_MAX_CONCURRENT_TASKS": "5",
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"encoder", cfg.Encoder, "simulated"},
		{"worker_id", cfg.Server.WorkerID, "w1"},
		{"storage.root", cfg.Storage.Root, "/tmp/store"},
		{"ffmpeg.video_codec (env over file)", cfg.FFmpeg.VideoCodec, "libvpx-vp9"},
		{"ffmpeg.crf", cfg.FFmpeg.CRF, 28},
		{"ffmpeg.timeout", cfg.FFmpeg.Timeout, 90 * time.Second},
		{"ffmpeg.extra_output_args", strings.Join(cfg.FFmpeg.ExtraOutputArgs, " "), "-tune film"},
		{"simulated.ratio", cfg.Simulated.Ratio, 0.25},
		{"simulated.delay", cfg.Simulated.Delay, 200 * time.Millisecond},
		{"limits.max_concurrent_tasks (env over file)", cfg.Server.MaxConcurrentTasks, 5},
		{"limits.max_chunk_bytes", cfg.Server.MaxChunkBytes, int64(64 << 20)},
		{"grpc.max_message_bytes", cfg.Server.MaxMessageBytes, 1 << 30},
		{"health.ttl", cfg.Server.HealthTTL, 2 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		wantKey    string
	}{
		{"unknown top-level key", "listne: 1.2.3.4:5\n", nil, "listne"},
		{"bad log format", "log: {format: xml}\n", nil, "log.format"},
		{"bad log level", "log: {level: loud}\n", nil, "log.level"},
		{"bad metrics address", "metrics: {listen: localhost}\n", nil, "metrics.listen"},
		{"pprof without metrics", "metrics: {pprof: true}\n", nil, "metrics.pprof: needs metrics.listen"},
		{"public pprof", "metrics: {listen: 0.0.0.0:9091, pprof: true}\n", nil, "metrics.pprof: metrics.listen"},
		{"unknown nested key", "ffmpeg: {codec: libx264}\n", nil, "ffmpeg.codec"},
		{"bad encoder", "encoder: gpu\n", nil, "encoder"},
		{"bad crf", "ffmpeg: {crf: high}\n", nil, "ffmpeg.crf"},
		{"bad timeout", "ffmpeg: {timeout: soon}\n", nil, "ffmpeg.timeout"},
		{"bare number timeout", "ffmpeg: {timeout: 30}\n", nil, "ffmpeg.timeout"},
		{"ratio out of range", "simulated: {ratio: 1.5}\n", nil, "simulated.ratio"},
		{"zero concurrency", "limits: {max_concurrent_tasks: 0}\n", nil, "limits.max_concurrent_tasks"},
		{"bad size", "limits: {max_chunk_bytes: lots}\n", nil, "limits.max_chunk_bytes"},
		{"tiny message limit", "grpc: {max_message_bytes: 1000}\n", nil, "grpc.max_message_bytes"},
		{"zero health ttl", "health: {ttl: 0s}\n", nil, "config key health.ttl: must be positive"},
		{"no stream limit", "grpc: {max_concurrent_streams: 0}\n", nil, "grpc.max_concurrent_streams"},
		{"negative unary limit", "limits: {max_unary_chunks: -1}\n", nil, "limits.max_unary_chunks"},
		{"negative upload limit", "limits: {max_uploads: -2}\n", nil, "limits.max_uploads"},
		{"no idle timeout", "limits: {upload_idle_timeout: 0s}\n", nil, "limits.upload_idle_timeout"},
		{"no upload timeout", "limits: {upload_timeout: 0s}\n", nil, "limits.upload_timeout"},
		{"idle beyond the whole", "limits: {upload_idle_timeout: 11m}\n", nil, "must not exceed limits.upload_timeout"},
		{"bad listen", "listen: nowhere\n", nil, "listen"},
		{"bad env value", "", map[string]string{"VIDEOSHARD_SIMULATED_DELAY": "x"}, "simulated.delay"},
		{"not yaml", "listen: [\n", nil, "parse config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.yaml, tt.env)
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("error %q does not name %q", err, tt.wantKey)
			}
		})
	}
}

func TestShippedConfigsParse(t *testing.T) {
	for _, name := range []string{"worker.yaml", "worker-simulated.yaml"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "..", "configs", name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			v := newViper()
			if err := readConfigFile(v, f); err != nil {
				t.Fatal(err)
			}
			if _, err := loadConfig(v); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      any
		want    int64
		wantErr bool
	}{
		{"256MiB", 256 << 20, false},
		{"4GiB", 4 << 30, false},
		{"10 KB", 10000, false},
		{"12B", 12, false},
		{1024, 1024, false},
		{"1024", 1024, false},
		{"-1MiB", 0, true},
		{"1.5GiB", 0, true},
		{"huge", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%v) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFlagsOverrideFileAndEnv(t *testing.T) {
	config := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(config, []byte("listen: 127.0.0.1:1\nencoder: ffmpeg\nstorage: {root: /from/file}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIDEOSHARD_LISTEN", "127.0.0.1:2")
	v := newViper()
	cmd := newRootCmd(v)
	if err := cmd.ParseFlags([]string{"--listen", "127.0.0.1:3", "--encoder", "simulated", "--storage-root", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := configFrom(v, config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:3" || cfg.Encoder != "simulated" || cfg.Storage.Root != "/from/flag" {
		t.Fatalf("flags did not win: %+v", cfg)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	config := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(config, []byte("listen: 127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIDEOSHARD_LISTEN", "127.0.0.1:2")
	v := newViper()
	newRootCmd(v) // binds the flags, unset
	cfg, err := configFrom(v, config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2" {
		t.Fatalf("listen = %s, want the environment's", cfg.Listen)
	}
}

func TestConfigMeasureQuality(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    bool
		wantErr bool
	}{
		{name: "default off"},
		{name: "on", yaml: "ffmpeg: {measure_quality: true}\n", want: true},
		{name: "off", yaml: "ffmpeg: {measure_quality: false}\n"},
		{name: "env over file", yaml: "ffmpeg: {measure_quality: false}\n", env: map[string]string{"VIDEOSHARD_FFMPEG_MEASURE_QUALITY": "true"}, want: true},
		{name: "not a bool", yaml: "ffmpeg: {measure_quality: sometimes}\n", wantErr: true},
		{name: "a list", yaml: "ffmpeg: {measure_quality: [true]}\n", wantErr: true},
		{name: "misspelt", yaml: "ffmpeg: {measure_qualty: true}\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.yaml, tt.env)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "ffmpeg.measure_qua") {
					t.Fatalf("err = %v, want one naming the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.FFmpeg.MeasureQuality != tt.want {
				t.Errorf("ffmpeg.measure_quality = %v, want %v", cfg.FFmpeg.MeasureQuality, tt.want)
			}
		})
	}
}

func TestConfigAllowOverrides(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    encode.OverridePolicy
		wantErr string // the key the error names; "" for none
	}{
		{name: "default: nothing", want: encode.OverridePolicy{VideoCodecs: []string{}, Presets: []string{}}},
		{name: "lists and a range",
			yaml: "ffmpeg: {allow_overrides: {video_codecs: [libx265], presets: [ultrafast, veryfast], crf: 18-30}}\n",
			want: encode.OverridePolicy{VideoCodecs: []string{"libx265"}, Presets: []string{"ultrafast", "veryfast"},
				CRF: &encode.CRFRange{Min: 18, Max: 30}}},
		{name: "one crf", yaml: "ffmpeg: {allow_overrides: {crf: 0}}\n",
			want: encode.OverridePolicy{VideoCodecs: []string{}, Presets: []string{}, CRF: &encode.CRFRange{Min: 0, Max: 0}}},
		{name: "env", env: map[string]string{"VIDEOSHARD_FFMPEG_ALLOW_OVERRIDES_VIDEO_CODECS": "libx265 libvpx-vp9",
			"VIDEOSHARD_FFMPEG_ALLOW_OVERRIDES_CRF": " 20 - 28 "},
			want: encode.OverridePolicy{VideoCodecs: []string{"libx265", "libvpx-vp9"}, Presets: []string{},
				CRF: &encode.CRFRange{Min: 20, Max: 28}}},
		{name: "reversed range", yaml: "ffmpeg: {allow_overrides: {crf: 30-18}}\n", wantErr: "ffmpeg.allow_overrides.crf"},
		{name: "negative crf", yaml: "ffmpeg: {allow_overrides: {crf: -1}}\n", wantErr: "ffmpeg.allow_overrides.crf"},
		{name: "not a range", yaml: "ffmpeg: {allow_overrides: {crf: low}}\n", wantErr: "ffmpeg.allow_overrides.crf"},
		{name: "codecs not a list", yaml: "ffmpeg: {allow_overrides: {video_codecs: {a: 1}}}\n", wantErr: "ffmpeg.allow_overrides.video_codecs"},
		{name: "misspelt", yaml: "ffmpeg: {allow_overrides: {codecs: [libx265]}}\n", wantErr: "ffmpeg.allow_overrides.codecs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.yaml, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.FFmpeg.AllowOverrides; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("allow_overrides = %+v (crf %v), want %+v (crf %v)", got, got.CRF, tt.want, tt.want.CRF)
			}
		})
	}
}

func TestConfigPixelLimits(t *testing.T) {
	const frame = 4096 * 2160
	tests := []struct {
		name                     string
		yaml                     string
		frame, perSecond, pixels int64
		wantErr                  string
	}{
		{name: "defaults: DCI 4K at 60 frames/s for a minute", frame: frame, perSecond: frame * 60, pixels: frame * 60 * 60},
		{name: "set", yaml: "limits: {max_frame_pixels: 8294400, max_pixels_per_second: 497664000, max_chunk_pixels: 0}\n",
			frame: 8294400, perSecond: 497664000, pixels: 0},
		{name: "frame beyond ffmpeg's bound", yaml: "limits: {max_frame_pixels: 2147483648}\n", wantErr: "limits.max_frame_pixels"},
		{name: "negative frame", yaml: "limits: {max_frame_pixels: -1}\n", wantErr: "limits.max_frame_pixels"},
		{name: "negative rate", yaml: "limits: {max_pixels_per_second: -5}\n", wantErr: "limits.max_pixels_per_second"},
		{name: "not a number", yaml: "limits: {max_chunk_pixels: many}\n", wantErr: "limits.max_chunk_pixels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.yaml, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := cfg.FFmpeg.Limits
			if l.FramePixels != tt.frame || l.PixelsPerSecond != tt.perSecond || l.ChunkPixels != tt.pixels {
				t.Errorf("limits = %+v, want frame %d, per second %d, chunk %d", l, tt.frame, tt.perSecond, tt.pixels)
			}
		})
	}
}

// Codec and preset names in ffmpeg.allow_overrides are checked against the
// encoder's allowlist when the encoder is made, at start-up; the error
// names the key.
func TestNewEncoderChecksAllowOverrides(t *testing.T) {
	tests := []struct{ yaml, key string }{
		{"ffmpeg: {allow_overrides: {video_codecs: [libx264rgb]}}\n", "ffmpeg.allow_overrides.video_codecs"},
		{"ffmpeg: {allow_overrides: {presets: [warp]}}\n", "ffmpeg.allow_overrides.presets"},
		{"ffmpeg: {video_codec: libvpx-vp9, allow_overrides: {presets: [fast]}}\n", "ffmpeg.allow_overrides.presets"},
		{"ffmpeg: {allow_overrides: {crf: 0-64}}\n", "ffmpeg.allow_overrides.crf"},
	}
	for _, tt := range tests {
		cfg, err := parse(t, tt.yaml, nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if _, _, err := newEncoder(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: newEncoder = %v, want an error naming %s", tt.yaml, err, tt.key)
		}
	}
	cfg, err := parse(t, "ffmpeg: {allow_overrides: {video_codecs: [libx265], presets: [fast], crf: 18-30}}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := newEncoder(cfg, nil, nil); err != nil {
		t.Fatalf("newEncoder: %v", err)
	}
}
