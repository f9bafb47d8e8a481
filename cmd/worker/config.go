package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/viper"

	"github.com/videoshard/videoshard/encode"
)

// Config is the worker's whole configuration, read from a file, the
// environment (VIDEOSHARD_ + key, dots as underscores) and flags.
type Config struct {
	Listen        string
	WorkerID      string
	Encoder       string // "ffmpeg" or "simulated"
	ShutdownGrace time.Duration
	Storage       StorageConfig
	FFmpeg        FFmpegConfig
	Simulated     SimulatedConfig
	Limits        LimitsConfig
	GRPC          GRPCConfig
	Health        HealthConfig
	TLS           TLSConfig  // security.go
	Auth          AuthConfig // security.go
	// Insecure allows listening beyond loopback with neither TLS nor auth.
	Insecure bool
}

type StorageConfig struct {
	Root string
	// ScrubInterval is the time between background scrubs; 0 turns them off.
	ScrubInterval time.Duration
	// ScrubBytesPerSecond caps a scrub's read rate; 0 means no limit.
	ScrubBytesPerSecond int64
}

type FFmpegConfig struct {
	Binary          string
	FFprobe         string
	VideoCodec      string
	CRF             int
	Preset          string
	AudioCodec      string
	Container       string
	Threads         int
	Timeout         time.Duration
	ExtraOutputArgs []string
	// MeasureQuality makes every encode measure its shard's PSNR and SSIM
	// against the chunk, into the chunk's metadata.
	MeasureQuality bool
	// AllowOverrides is what a request may choose beyond VideoCodec,
	// Preset and CRF (keys ffmpeg.allow_overrides.*).
	AllowOverrides AllowOverridesConfig
}

// AllowOverridesConfig is encode.OverridePolicy as configured.
type AllowOverridesConfig struct {
	VideoCodecs []string
	Presets     []string
	// CRF is nil when no CRF but the configured one is allowed.
	CRF *encode.CRFRange
}

type SimulatedConfig struct {
	Ratio float64
	Delay time.Duration
}

type LimitsConfig struct {
	MaxConcurrentTasks int
	MaxQueuedTasks     int
	MaxChunkBytes      int64
	// Pixel limits of a chunk (encode.PixelLimits); 0 means no limit.
	MaxFramePixels     int64
	MaxPixelsPerSecond int64
	MaxChunkPixels     int64
	// MaxUnaryChunks bounds unary ProcessChunk calls in flight; each may
	// hold grpc.max_message_bytes in memory.
	MaxUnaryChunks int
	// MaxUploads bounds UploadChunk streams in flight; each may spool up to
	// max_chunk_bytes in the store's .tmp.
	MaxUploads int
	// UploadIdleTimeout aborts an upload that sends nothing for that long;
	// UploadTimeout bounds a whole upload (and a unary chunk's message).
	UploadIdleTimeout time.Duration
	UploadTimeout     time.Duration
}

type GRPCConfig struct {
	MaxMessageBytes int64
	// MaxConcurrentStreams bounds the calls in flight on one connection.
	MaxConcurrentStreams int
}

type HealthConfig struct {
	// TTL is how long a dependency check (encoder, store) is reused.
	TTL time.Duration
}

// defaultMaxFramePixels is 4096x2160 (DCI 4K), the largest picture a
// worker decodes by default (limits.max_frame_pixels); the other pixel
// limits derive from it. An encode's memory grows with its pictures' size:
// x264 at its default preset holds about 200 bytes per pixel of one
// picture (1.9 GB at 4096x2160, 6.2 GB at 8192x4320, from chunks of 28 and
// 106 KB), so 8K is for operators who size their machines for it.
const defaultMaxFramePixels int64 = 4096 * 2160

// defaults holds every known key with its default; a key not here is unknown.
func defaults() map[string]any {
	return map[string]any{
		"listen":                      "127.0.0.1:50061",
		"worker_id":                   "",
		"encoder":                     "ffmpeg",
		"shutdown_grace":              "30s",
		"storage.root":                "./video_shards",
		"ffmpeg.binary":               "ffmpeg",
		"ffmpeg.ffprobe":              "ffprobe",
		"ffmpeg.video_codec":          "libx264",
		"ffmpeg.crf":                  0,
		"ffmpeg.preset":               "",
		"ffmpeg.audio_codec":          "copy",
		"ffmpeg.container":            "matroska",
		"ffmpeg.threads":              0,
		"ffmpeg.timeout":              "10m",
		"ffmpeg.extra_output_args":    []string{},
		"ffmpeg.measure_quality":      false,
		"simulated.ratio":             0.5,
		"simulated.delay":             "0s",
		"limits.max_concurrent_tasks": runtime.NumCPU(),
		"limits.max_queued_tasks":     0,
		"limits.max_chunk_bytes":      "4GiB",
		"limits.max_unary_chunks":     0,
		"limits.max_uploads":          0,
		"limits.upload_idle_timeout":  "30s",
		"limits.upload_timeout":       "10m",
		// 64 MiB: a 48 MiB chunk still fits in one message, as old clients
		// send them, and max RSS stays within a 2 GiB machine (README).
		"grpc.max_message_bytes":      "64MiB",
		"grpc.max_concurrent_streams": 100,
		"health.ttl":                  "30s",
		// Transport security and authentication (security.go).
		"tls.cert_file":      "",
		"tls.key_file":       "",
		"tls.client_ca_file": "",
		"auth.tokens":        []string{},
		"auth.tokens_file":   "",
		"insecure":           false,
		// Background integrity checks of the store (storage.Scrub).
		"storage.scrub_interval":         "0s",
		"storage.scrub_bytes_per_second": 0,

		// What a request's encoding options may choose beyond the
		// configured codec, preset and CRF: nothing (encode.OverridePolicy).
		"ffmpeg.allow_overrides.video_codecs": []string{},
		"ffmpeg.allow_overrides.presets":      []string{},
		"ffmpeg.allow_overrides.crf":          "",

		// What a chunk may decode to (encode.PixelLimits): pictures up to
		// 4096x2160 (DCI 4K; UHD 4K and everything smaller fit), at up to
		// 60 frames/s, for up to a minute (six times the master's default
		// segment) at that rate.
		"limits.max_frame_pixels":      defaultMaxFramePixels,
		"limits.max_pixels_per_second": defaultMaxFramePixels * 60,
		"limits.max_chunk_pixels":      defaultMaxFramePixels * 60 * 60,
	}
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
		if _, ok := known[k]; !ok {
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
	cfg := Config{
		Listen:        r.str("listen"),
		WorkerID:      r.str("worker_id"),
		Encoder:       r.oneOf("encoder", "ffmpeg", "simulated"),
		ShutdownGrace: r.duration("shutdown_grace"),
		Storage: StorageConfig{
			Root:                r.str("storage.root"),
			ScrubInterval:       r.duration("storage.scrub_interval"),
			ScrubBytesPerSecond: r.size("storage.scrub_bytes_per_second"),
		},
		FFmpeg: FFmpegConfig{
			Binary:          r.str("ffmpeg.binary"),
			FFprobe:         r.str("ffmpeg.ffprobe"),
			VideoCodec:      r.str("ffmpeg.video_codec"),
			CRF:             r.integer("ffmpeg.crf"),
			Preset:          r.str("ffmpeg.preset"),
			AudioCodec:      r.str("ffmpeg.audio_codec"),
			Container:       r.str("ffmpeg.container"),
			Threads:         r.integer("ffmpeg.threads"),
			Timeout:         r.duration("ffmpeg.timeout"),
			ExtraOutputArgs: r.strings("ffmpeg.extra_output_args"),
			MeasureQuality:  r.boolean("ffmpeg.measure_quality"),
			AllowOverrides: AllowOverridesConfig{
				VideoCodecs: r.strings("ffmpeg.allow_overrides.video_codecs"),
				Presets:     r.strings("ffmpeg.allow_overrides.presets"),
				CRF:         r.crfRange("ffmpeg.allow_overrides.crf"),
			},
		},
		Simulated: SimulatedConfig{
			Ratio: r.float("simulated.ratio"),
			Delay: r.duration("simulated.delay"),
		},
		Limits: LimitsConfig{
			MaxConcurrentTasks: r.integer("limits.max_concurrent_tasks"),
			MaxQueuedTasks:     r.integer("limits.max_queued_tasks"),
			MaxChunkBytes:      r.size("limits.max_chunk_bytes"),
			MaxFramePixels:     r.int64("limits.max_frame_pixels"),
			MaxPixelsPerSecond: r.int64("limits.max_pixels_per_second"),
			MaxChunkPixels:     r.int64("limits.max_chunk_pixels"),
			MaxUnaryChunks:     r.integer("limits.max_unary_chunks"),
			MaxUploads:         r.integer("limits.max_uploads"),
			UploadIdleTimeout:  r.duration("limits.upload_idle_timeout"),
			UploadTimeout:      r.duration("limits.upload_timeout"),
		},
		GRPC: GRPCConfig{
			MaxMessageBytes:      r.size("grpc.max_message_bytes"),
			MaxConcurrentStreams: r.integer("grpc.max_concurrent_streams"),
		},
		Health: HealthConfig{TTL: r.duration("health.ttl")},
		TLS: TLSConfig{
			CertFile:     r.str("tls.cert_file"),
			KeyFile:      r.str("tls.key_file"),
			ClientCAFile: r.str("tls.client_ca_file"),
		},
		Auth:     AuthConfig{Tokens: r.strings("auth.tokens"), TokensFile: r.str("auth.tokens_file")},
		Insecure: r.boolean("insecure"),
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		r.fail("listen", fmt.Errorf("%q is not host:port", cfg.Listen))
	}
	if cfg.Storage.Root == "" {
		r.fail("storage.root", errors.New("must not be empty"))
	}
	r.check("storage.scrub_interval", cfg.Storage.ScrubInterval >= 0, "must not be negative (0 turns background scrubs off)")
	r.check("storage.scrub_bytes_per_second", cfg.Storage.ScrubBytesPerSecond >= 0, "must not be negative (0 means no limit)")
	r.check("ffmpeg.timeout", cfg.FFmpeg.Timeout >= 0, "must not be negative")
	r.check("ffmpeg.threads", cfg.FFmpeg.Threads >= 0, "must not be negative")
	r.check("simulated.ratio", cfg.Simulated.Ratio > 0 && cfg.Simulated.Ratio <= 1, "must be in (0, 1]")
	r.check("simulated.delay", cfg.Simulated.Delay >= 0, "must not be negative")
	r.check("shutdown_grace", cfg.ShutdownGrace >= 0, "must not be negative")
	r.check("limits.max_concurrent_tasks", cfg.Limits.MaxConcurrentTasks >= 1, "must be at least 1")
	r.check("limits.max_queued_tasks", cfg.Limits.MaxQueuedTasks >= 0, "must not be negative (0 means 4 x max_concurrent_tasks)")
	r.check("limits.max_chunk_bytes", cfg.Limits.MaxChunkBytes >= 1, "must be positive")
	r.check("limits.max_frame_pixels", cfg.Limits.MaxFramePixels >= 0 && cfg.Limits.MaxFramePixels <= math.MaxInt32,
		"must be between 0 (no limit) and 2147483647 (ffmpeg's own bound)")
	r.check("limits.max_pixels_per_second", cfg.Limits.MaxPixelsPerSecond >= 0, "must not be negative (0 means no limit)")
	r.check("limits.max_chunk_pixels", cfg.Limits.MaxChunkPixels >= 0, "must not be negative (0 means no limit)")
	r.check("limits.max_unary_chunks", cfg.Limits.MaxUnaryChunks >= 0, "must not be negative (0 means max_concurrent_tasks)")
	r.check("limits.max_uploads", cfg.Limits.MaxUploads >= 0, "must not be negative (0 means 2 x max_concurrent_tasks)")
	r.check("limits.upload_idle_timeout", cfg.Limits.UploadIdleTimeout > 0,
		"must be positive: an upload that sends nothing would hold its place for ever")
	r.check("limits.upload_timeout", cfg.Limits.UploadTimeout > 0,
		"must be positive: a trickling upload would hold its place for ever")
	r.check("limits.upload_idle_timeout", cfg.Limits.UploadIdleTimeout <= cfg.Limits.UploadTimeout,
		"must not exceed limits.upload_timeout")
	r.check("grpc.max_concurrent_streams", cfg.GRPC.MaxConcurrentStreams >= 1 && cfg.GRPC.MaxConcurrentStreams <= 1<<20,
		"must be between 1 and 1048576")
	r.check("grpc.max_message_bytes", cfg.GRPC.MaxMessageBytes >= 1<<20 && cfg.GRPC.MaxMessageBytes <= 2<<30-1,
		"must be between 1MiB and 2GiB")
	r.check("health.ttl", cfg.Health.TTL > 0, "must be positive")
	checkSecurity(r, cfg)
	if len(r.errs) > 0 {
		return Config{}, errors.Join(r.errs...)
	}
	return cfg, nil
}

// keyReader reads typed values, collecting one error per bad key.
type keyReader struct {
	v    *viper.Viper
	errs []error
}

func (r *keyReader) fail(key string, err error) {
	r.errs = append(r.errs, fmt.Errorf("config key %s: %w", key, err))
}

func (r *keyReader) check(key string, ok bool, msg string) {
	if !ok {
		r.fail(key, errors.New(msg))
	}
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
