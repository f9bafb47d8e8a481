package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/viper"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/grpcapi"
	pb "github.com/videoshard/videoshard/proto"
	"github.com/videoshard/videoshard/storage"
)

// Config is the worker's whole configuration, read from a file, the
// environment (VIDEOSHARD_ + key, dots as underscores) and flags. Its parts
// are the core packages' own configurations, which hold the defaults
// (defaultConfig); this package only maps keys onto their fields (keys).
type Config struct {
	Listen        string
	Encoder       string // pb.EncoderFFmpeg or pb.EncoderSimulated
	ShutdownGrace time.Duration
	Storage       StorageConfig
	// FFmpeg is keys ffmpeg.* and, into its Limits, limits.max_*_pixels.
	FFmpeg    encode.FFmpegConfig
	Simulated encode.SimulatedConfig
	// Server is keys worker_id, limits.* (but the pixel limits), grpc.* and
	// health.ttl; run fills in the rest.
	Server grpcapi.Config
	TLS    TLSConfig  // security.go
	Auth   AuthConfig // security.go
	Peer   PeerConfig // peer.go; the rest of peer.* is in Server.Peer
	// Log and Metrics are keys log.* and metrics.* (observability.go).
	Log     LogConfig
	Metrics MetricsConfig
	// Insecure allows listening beyond loopback with neither TLS nor auth.
	Insecure bool
}

// StorageConfig is keys storage.*.
type StorageConfig struct {
	// Options are the store's; the keys are storage.root (Root) and
	// storage.index (Index), and run adds the logger and the lock.
	storage.Options
	// ScrubInterval is the time between background scrubs; 0 turns them off.
	ScrubInterval time.Duration
	// Scrub are the scrubs' options (storage.scrub_bytes_per_second).
	Scrub storage.ScrubOptions
}

// defaultConfig is the configuration of a worker told nothing: the core
// packages' defaults, and the daemon's own (where it listens and stores,
// how long it drains).
func defaultConfig() Config {
	return Config{
		Listen:        "127.0.0.1:50061",
		Encoder:       pb.EncoderFFmpeg,
		ShutdownGrace: 30 * time.Second,
		Storage: StorageConfig{Options: storage.Options{Root: "./video_shards", Index: storage.IndexSQLite,
			Limits: storage.Limits{Eviction: storage.EvictNone, EvictToRatio: storage.DefaultEvictToRatio}}},
		FFmpeg:    encode.DefaultFFmpegConfig(),
		Simulated: encode.DefaultSimulatedConfig(),
		Server:    grpcapi.DefaultConfig(),
		Log:       LogConfig{Format: "text", Level: "info"},
	}
}

// keys binds every known key to its field of cfg; a key not here is
// unknown. The field's value is the key's default when cfg is a
// defaultConfig. Errors are reported in this order.
func keys(cfg *Config) []key {
	f, srv := &cfg.FFmpeg, &cfg.Server
	return append([]key{
		stringKey("listen", &cfg.Listen),
		stringKey("worker_id", &srv.WorkerID),
		oneOfKey("encoder", &cfg.Encoder, pb.EncoderFFmpeg, pb.EncoderSimulated),
		durationKey("shutdown_grace", &cfg.ShutdownGrace),
		stringKey("storage.root", &cfg.Storage.Root),
		{name: "storage.index", def: string(cfg.Storage.Index), read: func(r *keyReader, k string) {
			cfg.Storage.Index = storage.IndexKind(r.oneOf(k, string(storage.IndexSQLite), string(storage.IndexMemory)))
		}},
		// Disk limits and what crossing one does (storage.Limits).
		sizeKey("storage.max_bytes", &cfg.Storage.Limits.MaxBytes),
		sizeKey("storage.min_free_bytes", &cfg.Storage.Limits.MinFreeBytes),
		{name: "storage.eviction", def: string(cfg.Storage.Limits.Eviction), read: func(r *keyReader, k string) {
			cfg.Storage.Limits.Eviction = storage.Eviction(r.oneOf(k, string(storage.EvictNone), string(storage.EvictLRU)))
		}},
		floatKey("storage.evict_to_ratio", &cfg.Storage.Limits.EvictToRatio),
		durationKey("storage.scrub_interval", &cfg.Storage.ScrubInterval),
		sizeKey("storage.scrub_bytes_per_second", &cfg.Storage.Scrub.BytesPerSecond),
		stringKey("ffmpeg.binary", &f.Binary),
		stringKey("ffmpeg.ffprobe", &f.FFprobe),
		stringKey("ffmpeg.video_codec", &f.VideoCodec),
		intKey("ffmpeg.crf", &f.CRF),
		stringKey("ffmpeg.preset", &f.Preset),
		stringKey("ffmpeg.audio_codec", &f.AudioCodec),
		stringKey("ffmpeg.container", &f.Container),
		intKey("ffmpeg.threads", &f.Threads),
		durationKey("ffmpeg.timeout", &f.Timeout),
		stringsKey("ffmpeg.extra_output_args", &f.ExtraOutputArgs),
		boolKey("ffmpeg.measure_quality", &f.MeasureQuality),
		// What a request's encoding options may choose beyond the
		// configured codec, preset and CRF (encode.OverridePolicy).
		stringsKey("ffmpeg.allow_overrides.video_codecs", &f.AllowOverrides.VideoCodecs),
		stringsKey("ffmpeg.allow_overrides.presets", &f.AllowOverrides.Presets),
		crfRangeKey("ffmpeg.allow_overrides.crf", &f.AllowOverrides.CRF),
		floatKey("simulated.ratio", &cfg.Simulated.Ratio),
		durationKey("simulated.delay", &cfg.Simulated.Delay),
		intKey("limits.max_concurrent_tasks", &srv.MaxConcurrentTasks),
		intKey("limits.max_queued_tasks", &srv.MaxQueuedTasks),
		sizeKey("limits.max_chunk_bytes", &srv.MaxChunkBytes),
		// What a chunk may decode to (encode.PixelLimits).
		int64Key("limits.max_frame_pixels", &f.Limits.FramePixels),
		int64Key("limits.max_pixels_per_second", &f.Limits.PixelsPerSecond),
		int64Key("limits.max_chunk_pixels", &f.Limits.ChunkPixels),
		intKey("limits.max_unary_chunks", &srv.MaxUnaryChunks),
		intKey("limits.max_uploads", &srv.MaxUploads),
		intKey("limits.max_connections_per_host", &srv.MaxConnsPerHost),
		intKey("limits.max_connections", &srv.MaxConns),
		sizeKey("limits.max_read_bytes", &srv.MaxReadBytes),
		durationKey("limits.upload_idle_timeout", &srv.UploadIdleTimeout),
		durationKey("limits.upload_timeout", &srv.UploadTimeout),
		// int and uint32 fields: the range is checked before narrowing.
		{name: "grpc.max_message_bytes", def: int64(srv.MaxMessageBytes), read: func(r *keyReader, k string) {
			n := r.size(k)
			if r.check(k, n >= 1<<20 && n <= 2<<30-1, "must be between 1MiB and 2GiB") {
				srv.MaxMessageBytes = int(n)
			}
		}},
		{name: "grpc.max_concurrent_streams", def: int(srv.MaxConcurrentStreams), read: func(r *keyReader, k string) {
			n := r.integer(k)
			if r.check(k, n >= 1 && n <= 1<<20, "must be between 1 and 1048576") {
				srv.MaxConcurrentStreams = uint32(n)
			}
		}},
		durationKey("health.ttl", &srv.HealthTTL),
		// Transport security and authentication (security.go).
		stringKey("tls.cert_file", &cfg.TLS.CertFile),
		stringKey("tls.key_file", &cfg.TLS.KeyFile),
		stringKey("tls.client_ca_file", &cfg.TLS.ClientCAFile),
		stringsKey("auth.tokens", &cfg.Auth.Tokens),
		stringKey("auth.tokens_file", &cfg.Auth.TokensFile),
		boolKey("insecure", &cfg.Insecure),
		// Logs, metrics and profiles (observability.go).
		oneOfKey("log.format", &cfg.Log.Format, logFormats...),
		oneOfKey("log.level", &cfg.Log.Level, logLevels...),
		stringKey("metrics.listen", &cfg.Metrics.Listen),
		boolKey("metrics.pprof", &cfg.Metrics.Pprof),
	}, peerKeys(cfg)...) // peer.* and labels (peer.go)
}

// defaults holds every known key with its default.
func defaults() map[string]any {
	cfg := defaultConfig()
	m := make(map[string]any)
	for _, k := range keys(&cfg) {
		m[k.name] = k.def
	}
	return m
}

// newViper returns a viper that knows every key and reads the environment.
func newViper() *viper.Viper {
	v := viper.New()
	for k, val := range defaults() {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("VIDEOSHARD")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	return v
}

// readConfigFile merges a YAML config into v, refusing unknown keys.
func readConfigFile(v *viper.Viper, r io.Reader) error {
	file := viper.New()
	file.SetConfigType("yaml")
	if err := file.ReadConfig(r); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	known := defaults()
	var unknown []string
	for _, k := range file.AllKeys() {
		if _, ok := known[k]; !ok && !strings.HasPrefix(k, labelsKeyPrefix) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config: unknown key %s", strings.Join(unknown, ", "))
	}
	v.SetConfigType("yaml")
	return v.MergeConfigMap(file.AllSettings())
}

// loadConfig turns the merged settings into a validated Config. Every error
// names the key.
func loadConfig(v *viper.Viper) (Config, error) {
	r := &keyReader{v: v}
	cfg := defaultConfig()
	for _, k := range keys(&cfg) {
		k.read(r, k.name)
	}
	srv := cfg.Server
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		r.fail("listen", fmt.Errorf("%q is not host:port", cfg.Listen))
	}
	if cfg.Storage.Root == "" {
		r.fail("storage.root", errors.New("must not be empty"))
	}
	r.check("storage.max_bytes", cfg.Storage.Limits.MaxBytes >= 0, "must not be negative (0 means no limit)")
	r.check("storage.min_free_bytes", cfg.Storage.Limits.MinFreeBytes >= 0, "must not be negative (0 means no limit)")
	r.check("storage.evict_to_ratio", cfg.Storage.Limits.EvictToRatio > 0 && cfg.Storage.Limits.EvictToRatio <= 1, "must be a fraction in (0, 1]")
	r.check("storage.scrub_interval", cfg.Storage.ScrubInterval >= 0, "must not be negative (0 turns background scrubs off)")
	r.check("storage.scrub_bytes_per_second", cfg.Storage.Scrub.BytesPerSecond >= 0, "must not be negative (0 means no limit)")
	r.check("ffmpeg.timeout", cfg.FFmpeg.Timeout >= 0, "must not be negative")
	r.check("ffmpeg.threads", cfg.FFmpeg.Threads >= 0, "must not be negative")
	r.check("simulated.ratio", cfg.Simulated.Ratio > 0 && cfg.Simulated.Ratio <= 1, "must be in (0, 1]")
	r.check("simulated.delay", cfg.Simulated.Delay >= 0, "must not be negative")
	r.check("shutdown_grace", cfg.ShutdownGrace >= 0, "must not be negative")
	r.check("limits.max_concurrent_tasks", srv.MaxConcurrentTasks >= 1, "must be at least 1")
	r.check("limits.max_queued_tasks", srv.MaxQueuedTasks >= 0, "must not be negative (0 means 4 x max_concurrent_tasks)")
	r.check("limits.max_chunk_bytes", srv.MaxChunkBytes >= 1, "must be positive")
	l := cfg.FFmpeg.Limits
	r.check("limits.max_frame_pixels", l.FramePixels >= 0 && l.FramePixels <= math.MaxInt32,
		"must be between 0 (no limit) and 2147483647 (ffmpeg's own bound)")
	r.check("limits.max_pixels_per_second", l.PixelsPerSecond >= 0, "must not be negative (0 means no limit)")
	r.check("limits.max_chunk_pixels", l.ChunkPixels >= 0, "must not be negative (0 means no limit)")
	r.check("limits.max_unary_chunks", srv.MaxUnaryChunks >= 0, "must not be negative (0 means max_concurrent_tasks)")
	r.check("limits.max_uploads", srv.MaxUploads >= 0, "must not be negative (0 means 2 x max_concurrent_tasks)")
	r.check("limits.max_connections_per_host", srv.MaxConnsPerHost >= 0, "must not be negative (0 means the default)")
	r.check("limits.max_connections", srv.MaxConns >= 0, "must not be negative (0 means the default)")
	r.check("limits.upload_idle_timeout", srv.UploadIdleTimeout > 0,
		"must be positive: an upload that sends nothing would hold its place for ever")
	r.check("limits.upload_timeout", srv.UploadTimeout > 0,
		"must be positive: a trickling upload would hold its place for ever")
	r.check("limits.upload_idle_timeout", srv.UploadIdleTimeout <= srv.UploadTimeout,
		"must not exceed limits.upload_timeout")
	r.check("health.ttl", srv.HealthTTL > 0, "must be positive")
	checkSecurity(r, cfg)
	checkMetrics(r, cfg)
	checkPeers(r, cfg)
	if len(r.errs) > 0 {
		return Config{}, errors.Join(r.errs...)
	}
	return cfg, nil
}

// key is one config key: its default, as viper takes it, and how to read
// its value into the field it is bound to.
type key struct {
	name string
	def  any
	read func(r *keyReader, name string)
}

func stringKey(name string, p *string) key {
	return key{name, *p, func(r *keyReader, k string) { *p = r.str(k) }}
}

func oneOfKey(name string, p *string, allowed ...string) key {
	return key{name, *p, func(r *keyReader, k string) { *p = r.oneOf(k, allowed...) }}
}

func intKey(name string, p *int) key {
	return key{name, *p, func(r *keyReader, k string) { *p = r.integer(k) }}
}

func int64Key(name string, p *int64) key {
	return key{name, *p, func(r *keyReader, k string) { *p = r.int64(k) }}
}

func floatKey(name string, p *float64) key {
	return key{name, *p, func(r *keyReader, k string) { *p = r.float(k) }}
}

func boolKey(name string, p *bool) key {
	return key{name, *p, func(r *keyReader, k string) { *p = r.boolean(k) }}
}

// sizeKey is a byte count, given as a number or with a unit.
func sizeKey(name string, p *int64) key {
	return key{name, *p, func(r *keyReader, k string) { *p = r.size(k) }}
}

// durationKey is a duration, given as text like 500ms (a bare number is
// refused: its unit would be a guess). The default is the same text.
func durationKey(name string, p *time.Duration) key {
	return key{name, p.String(), func(r *keyReader, k string) { *p = r.duration(k) }}
}

// stringsKey is a list; an unset one reads as empty, not nil.
func stringsKey(name string, p *[]string) key {
	def := append([]string{}, *p...)
	return key{name, def, func(r *keyReader, k string) { *p = r.strings(k) }}
}

// crfRangeKey is a CRF range as text: "" for none, "N" or "MIN-MAX".
func crfRangeKey(name string, p **encode.CRFRange) key {
	def := ""
	if *p != nil {
		def = (*p).String()
	}
	return key{name, def, func(r *keyReader, k string) { *p = r.crfRange(k) }}
}

// keyReader reads typed values, collecting one error per bad key.
type keyReader struct {
	v    *viper.Viper
	errs []error
}

func (r *keyReader) fail(key string, err error) {
	r.errs = append(r.errs, fmt.Errorf("config key %s: %w", key, err))
}

// check fails key with msg unless ok, and returns ok.
func (r *keyReader) check(key string, ok bool, msg string) bool {
	if !ok {
		r.fail(key, errors.New(msg))
	}
	return ok
}

func (r *keyReader) str(key string) string {
	s, err := cast.ToStringE(r.v.Get(key))
	if err != nil {
		r.fail(key, err)
	}
	return strings.TrimSpace(s)
}

func (r *keyReader) oneOf(key string, allowed ...string) string {
	s := r.str(key)
	if !slices.Contains(allowed, s) {
		r.fail(key, fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", ")))
	}
	return s
}

func (r *keyReader) integer(key string) int {
	n, err := cast.ToIntE(r.v.Get(key))
	if err != nil {
		r.fail(key, fmt.Errorf("%v is not an integer", r.v.Get(key)))
	}
	return n
}

func (r *keyReader) int64(key string) int64 {
	n, err := cast.ToInt64E(r.v.Get(key))
	if err != nil {
		r.fail(key, fmt.Errorf("%v is not an integer", r.v.Get(key)))
	}
	return n
}

// crfRange reads "" (nil: no range), "N" or "MIN-MAX" (0 <= MIN <= MAX).
func (r *keyReader) crfRange(key string) *encode.CRFRange {
	s := r.str(key)
	if s == "" {
		return nil
	}
	first, last, isRange := strings.Cut(s, "-")
	if !isRange {
		last = first
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(first))
	hi, err2 := strconv.Atoi(strings.TrimSpace(last))
	if err1 != nil || err2 != nil || lo < 0 || lo > hi {
		r.fail(key, fmt.Errorf("%q is not a CRF range like 18-28 (or one value, or empty for none)", s))
		return nil
	}
	return &encode.CRFRange{Min: lo, Max: hi}
}

func (r *keyReader) float(key string) float64 {
	f, err := cast.ToFloat64E(r.v.Get(key))
	if err != nil {
		r.fail(key, fmt.Errorf("%v is not a number", r.v.Get(key)))
	}
	return f
}

func (r *keyReader) duration(key string) time.Duration {
	raw := r.v.Get(key)
	if s, ok := raw.(string); ok {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			r.fail(key, fmt.Errorf("%q is not a duration like 500ms or 2m", s))
		}
		return d
	}
	r.fail(key, fmt.Errorf("%v is not a duration like 500ms or 2m", raw))
	return 0
}

func (r *keyReader) boolean(key string) bool {
	b, err := cast.ToBoolE(r.v.Get(key))
	if err != nil {
		r.fail(key, fmt.Errorf("%v is not true or false", r.v.Get(key)))
	}
	return b
}

func (r *keyReader) strings(key string) []string {
	ss, err := cast.ToStringSliceE(r.v.Get(key))
	if err != nil {
		r.fail(key, fmt.Errorf("%v is not a list of strings", r.v.Get(key)))
	}
	return ss
}

// size reads a byte count: an integer, or a number with a unit
// (KiB, MiB, GiB, KB, MB, GB, B).
func (r *keyReader) size(key string) int64 {
	raw := r.v.Get(key)
	n, err := parseSize(raw)
	if err != nil {
		r.fail(key, err)
	}
	return n
}

func parseSize(raw any) (int64, error) {
	if s, ok := raw.(string); ok {
		s = strings.TrimSpace(s)
		units := []struct {
			suffix string
			mult   int64
		}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
		for _, u := range units {
			if num, ok := strings.CutSuffix(s, u.suffix); ok {
				v, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
				if err != nil || v < 0 || v > (1<<62)/u.mult {
					return 0, fmt.Errorf("%q is not a size like 256MiB", s)
				}
				return v * u.mult, nil
			}
		}
	}
	v, err := cast.ToInt64E(raw)
	if err != nil {
		return 0, fmt.Errorf("%v is not a size like 256MiB", raw)
	}
	return v, nil
}
