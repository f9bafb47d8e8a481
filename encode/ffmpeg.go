package encode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
	"github.com/videoshard/videoshard/internal/framehash"
	"github.com/videoshard/videoshard/internal/proc"
	"github.com/videoshard/videoshard/internal/quality"
)

// defaultInputFormats are the demuxers ffmpeg and ffprobe may use to read a
// chunk: common video containers and elementary streams. Playlist and
// indirection demuxers (hls, concat, ...) are excluded on purpose, since
// they could make ffmpeg read other local files into the output.
var defaultInputFormats = []string{
	"mov", "matroska", "webm", "mpegts", "mpeg", "avi", "flv", "ogg", "ivf",
	"asf", "mxf", "nut", "m4v", "h264", "hevc", "obu", "yuv4mpegpipe",
}

// FFmpegConfig configures an FFmpeg encoder. Zero values mean the defaults
// given per field; NewFFmpeg fills them in and FFmpeg.Config reports them.
// A zero Timeout and zero Limits mean none: DefaultFFmpegConfig has the
// bounds a worker runs with.
type FFmpegConfig struct {
	// Binary is the ffmpeg program, a name looked up in PATH or a path.
	// Default "ffmpeg".
	Binary string
	// FFprobe is the ffprobe program. Default "ffprobe".
	FFprobe string
	// VideoCodec is the default ffmpeg video encoder; it must be on the
	// allowlist (libx264, libx265, libvpx-vp9, libaom-av1, libsvtav1,
	// mpeg4). Default "libx264".
	VideoCodec string
	// CRF is the default constant rate factor for VideoCodec: 0-51 for
	// libx264/libx265, 0-63 for libvpx-vp9/libaom-av1/libsvtav1; mpeg4 takes
	// none. -1 means "do not pass -crf". 0 means the codec's default (23 for
	// libx264, 28 for libx265, 31 for libvpx-vp9, 30 for libaom-av1, 35 for
	// libsvtav1, none for mpeg4), so a configured lossless CRF 0 is not
	// expressible here; a request can still ask for it.
	CRF int
	// Preset is the default preset for VideoCodec: ultrafast..placebo for
	// libx264/libx265, "0".."13" for libsvtav1; the others take none.
	// Default "medium" for libx264/libx265, none otherwise.
	Preset string
	// AudioCodec is "copy" (keep the audio streams as they are), "none"
	// (drop audio), or an ffmpeg audio encoder name such as "aac" or
	// "libopus". Default "copy".
	AudioCodec string
	// Container is the ffmpeg muxer name (-f), e.g. "matroska", "mp4",
	// "webm". Output paths carry no extension, so it is always passed.
	// Default "matroska".
	Container string
	// AllowOverrides is what a request may choose beyond VideoCodec,
	// Preset and CRF; the zero value allows nothing else (see
	// OverridePolicy). A request outside it is ErrOverrideNotAllowed.
	AllowOverrides OverridePolicy
	// Limits bound the pictures a chunk may decode to; zero fields mean
	// no limit (see PixelLimits). A chunk beyond them is ErrTooManyPixels.
	Limits PixelLimits
	// Threads, when positive, is passed as -threads to the encoder and to
	// the input's decoder, bounding both the CPU and the memory (pictures
	// in flight) of one encode; 0 lets ffmpeg decide, which on a machine
	// with many CPUs means many threads, each holding pictures.
	Threads int
	// Timeout bounds the ffmpeg run, the output probe and (with
	// MeasureQuality) the measuring of one chunk together (spooling the
	// input is the caller's I/O and is not counted); 0 means none. On
	// expiry the error wraps context.DeadlineExceeded.
	Timeout time.Duration
	// MeasureQuality makes Encode measure every shard's pictures against
	// the input's (PSNR and SSIM, quality.MeasureQuality) into
	// Result.Quality. It costs about one more decode of the input and the
	// shard. Default false.
	MeasureQuality bool
	// ExtraOutputArgs are operator-trusted ffmpeg output options, inserted
	// just before the output file, after (and so overriding) the generated
	// ones. Requests can never add arguments.
	ExtraOutputArgs []string
	// InputFormats are the demuxers ffmpeg may use to read input
	// (-format_whitelist); input in any other format is ErrInvalidInput.
	// Default: common video containers and elementary streams; playlist and
	// concat demuxers are not among them.
	InputFormats []string
	// TempDir is where inputs are spooled (ffmpeg needs a seekable file for
	// mp4). Default os.TempDir().
	TempDir string
	// CreateTemp, when set, makes the spooled inputs instead, and TempDir
	// is not used: the worker's come from its store
	// (storage.Store.CreateTemp), made through its handle on its .tmp and
	// opened by ffmpeg by a path that names the open file.
	CreateTemp func(pattern string) (TempFile, error)
	// Logger receives debug records of each command line. Default: discard.
	Logger *slog.Logger
}

// DefaultFFmpegConfig is the configuration a worker runs with unless told
// otherwise (cmd/worker's ffmpeg.* and limits.max_*_pixels keys start from
// it): the defaults NewFFmpeg fills in, ten minutes per chunk (Timeout), and
// DefaultPixelLimits. CRF and Preset stay zero: the codec's own defaults.
func DefaultFFmpegConfig() FFmpegConfig {
	var tools fftool.Tools // the programs by their names in PATH
	return FFmpegConfig{
		Binary:     tools.FFmpegBin(),
		FFprobe:    tools.FFprobeBin(),
		VideoCodec: "libx264",
		AudioCodec: "copy",
		Container:  "matroska",
		Timeout:    10 * time.Minute,
		Limits:     DefaultPixelLimits(),
	}
}

// FFmpeg encodes chunks by running the ffmpeg binary. It writes the encoded
// chunk to Output.Path and never calls Output.Write. It is safe for
// concurrent use; each Encode runs its own ffmpeg process.
type FFmpeg struct {
	cfg FFmpegConfig
	log *slog.Logger
}

var (
	_ Encoder          = (*FFmpeg)(nil)
	_ SettingsResolver = (*FFmpeg)(nil)
	_ FrameTrimmer     = (*FFmpeg)(nil)
	_ PictureHasher    = (*FFmpeg)(nil)
)

// NewFFmpeg validates cfg, fills in defaults, and returns an encoder. It
// does not run ffmpeg; use Check for that. The error names the bad field.
func NewFFmpeg(cfg FFmpegConfig) (*FFmpeg, error) {
	def := DefaultFFmpegConfig()
	if cfg.Binary == "" {
		cfg.Binary = def.Binary
	}
	if cfg.FFprobe == "" {
		cfg.FFprobe = def.FFprobe
	}
	if cfg.VideoCodec == "" {
		cfg.VideoCodec = def.VideoCodec
	}
	spec, err := lookupCodec(cfg.VideoCodec)
	if err != nil {
		return nil, fmt.Errorf("ffmpeg config: VideoCodec: %v", err)
	}
	switch cfg.CRF {
	case 0:
		cfg.CRF = spec.defaultCRF
	case -1:
	default:
		if err := spec.checkCRF(cfg.VideoCodec, cfg.CRF); err != nil {
			return nil, fmt.Errorf("ffmpeg config: CRF: %v (or -1 for none)", err)
		}
	}
	if cfg.Preset == "" {
		cfg.Preset = spec.defaultPreset
	} else if err := spec.checkPreset(cfg.VideoCodec, cfg.Preset); err != nil {
		return nil, fmt.Errorf("ffmpeg config: Preset: %v", err)
	}
	if err := cfg.AllowOverrides.validate(cfg.VideoCodec); err != nil {
		return nil, err
	}
	cfg.AllowOverrides = cfg.AllowOverrides.clone()
	if err := cfg.Limits.validate(); err != nil {
		return nil, err
	}
	if cfg.AudioCodec == "" {
		cfg.AudioCodec = def.AudioCodec
	} else if !isName(cfg.AudioCodec, "_-") {
		return nil, fmt.Errorf("ffmpeg config: AudioCodec %q: want copy, none, or an encoder name of [a-z0-9_-]", cfg.AudioCodec)
	}
	if cfg.Container == "" {
		cfg.Container = def.Container
	} else if !isName(cfg.Container, "_") {
		return nil, fmt.Errorf("ffmpeg config: Container %q: want a muxer name of [a-z0-9_]", cfg.Container)
	}
	if cfg.Threads < 0 {
		return nil, fmt.Errorf("ffmpeg config: Threads %d must not be negative", cfg.Threads)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("ffmpeg config: Timeout %v must not be negative", cfg.Timeout)
	}
	if cfg.InputFormats == nil {
		cfg.InputFormats = defaultInputFormats
	}
	cfg.InputFormats = slices.Clone(cfg.InputFormats)
	if len(cfg.InputFormats) == 0 {
		return nil, errors.New("ffmpeg config: InputFormats is empty")
	}
	for _, f := range cfg.InputFormats {
		if !isName(f, "_") {
			return nil, fmt.Errorf("ffmpeg config: InputFormats: %q: want a demuxer name of [a-z0-9_]", f)
		}
	}
	cfg.ExtraOutputArgs = slices.Clone(cfg.ExtraOutputArgs)
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &FFmpeg{cfg: cfg, log: cfg.Logger}, nil
}

// Name returns NameFFmpeg.
func (f *FFmpeg) Name() string { return NameFFmpeg }

// TrimsFrames reports whether Encode honours Options.Trim: unless the
// operator's ExtraOutputArgs set a filter of their own, which would replace
// the trim's (ffmpeg keeps the last -vf).
func (f *FFmpeg) TrimsFrames() bool { return !setsFilter(f.cfg.ExtraOutputArgs) }

// HashesPictures reports that Encode honours Options.HashPictures.
func (f *FFmpeg) HashesPictures() bool { return true }

// setsFilter reports whether ffmpeg output options set a video filter.
func setsFilter(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), ":")
		switch name {
		case "vf", "filter", "filter_complex", "lavfi", "filter_script", "filter_complex_script":
			return strings.HasPrefix(a, "-")
		}
	}
	return false
}

// Config returns the effective configuration, defaults filled in.
func (f *FFmpeg) Config() FFmpegConfig {
	c := f.cfg
	c.ExtraOutputArgs = slices.Clone(c.ExtraOutputArgs)
	c.InputFormats = slices.Clone(c.InputFormats)
	c.AllowOverrides = c.AllowOverrides.clone()
	return c
}

// Check runs ffmpeg and ffprobe to print their versions and verifies that
// ffmpeg has the configured video encoder, audio encoder (if any) and
// muxer. Any failure wraps ErrUnavailable with the reason.
func (f *FFmpeg) Check(ctx context.Context) error {
	for _, bin := range []string{f.cfg.Binary, f.cfg.FFprobe} {
		if stderr, err := proc.Run(ctx, proc.Cmd{Name: bin, Args: []string{"-hide_banner", "-version"}}); err != nil {
			return fmt.Errorf("%w: %w%s", ErrUnavailable, err, withReason(stderr))
		}
	}
	out := proc.NewLimitedBuffer(1 << 20)
	stderr, err := proc.Run(ctx, proc.Cmd{Name: f.cfg.Binary, Args: []string{"-hide_banner", "-encoders"}, Stdout: out})
	if err != nil {
		return fmt.Errorf("%w: list encoders: %w%s", ErrUnavailable, err, withReason(stderr))
	}
	encoders := parseEncoders(out.String())
	need := []string{f.cfg.VideoCodec}
	if a := f.cfg.AudioCodec; a != "copy" && a != "none" {
		need = append(need, a)
	}
	for _, name := range need {
		if !encoders[name] {
			return fmt.Errorf("%w: %s has no %s encoder", ErrUnavailable, f.cfg.Binary, name)
		}
	}

	out = proc.NewLimitedBuffer(1 << 20)
	stderr, err = proc.Run(ctx, proc.Cmd{Name: f.cfg.Binary, Args: []string{"-hide_banner", "-muxers"}, Stdout: out})
	if err != nil {
		return fmt.Errorf("%w: list muxers: %w%s", ErrUnavailable, err, withReason(stderr))
	}
	if !parseMuxers(out.String())[f.cfg.Container] {
		return fmt.Errorf("%w: %s has no %s muxer", ErrUnavailable, f.cfg.Binary, f.cfg.Container)
	}
	return nil
}

// parseEncoders returns the encoder names in `ffmpeg -encoders` output,
// whose lines look like " V....D libx264   libx264 H.264 ...".
func parseEncoders(s string) map[string]bool {
	names := make(map[string]bool)
	for line := range strings.Lines(s) {
		fields := strings.Fields(line)
		if len(fields) >= 2 && len(fields[0]) == 6 && fields[1] != "=" {
			names[fields[1]] = true
		}
	}
	return names
}

// parseMuxers returns the muxer names in `ffmpeg -muxers` output, whose
// lines look like "  E matroska        Matroska".
func parseMuxers(s string) map[string]bool {
	names := make(map[string]bool)
	for line := range strings.Lines(s) {
		fields := strings.Fields(line)
		if len(fields) >= 2 && (fields[0] == "E" || fields[0] == "DE") {
			for name := range strings.SplitSeq(fields[1], ",") {
				names[name] = true
			}
		}
	}
	return names
}

// settings are the effective encoder settings of one request.
type settings struct {
	codec     string
	crf       int // -1: not passed
	preset    string
	audio     string
	container string
	threads   int
	extra     []string // the configured ExtraOutputArgs
	trim      *Trim    // nil: the whole chunk
	// hashPictures adds a framehash output of the decoded input on
	// stdout (Options.HashPictures); not one of the shard's settings.
	hashPictures bool
	// chunk is what Encode read of the input's presentation (presentation.go).
	chunk chunkPresentation
}

// resolve applies opts to the configured defaults. A request that picks a
// different codec gets that codec's own defaults for CRF and preset (the
// configured ones were chosen for the configured codec); explicit CRF and
// preset are checked against the effective codec. A trim drops the audio.
// Anything outside the allowlist, or an invalid trim, is ErrInvalidOptions;
// an effective codec, preset or CRF that is neither the configured one nor
// allowed by AllowOverrides is ErrOverrideNotAllowed.
func (f *FFmpeg) resolve(opts Options) (settings, error) {
	s := settings{
		codec:     f.cfg.VideoCodec,
		crf:       f.cfg.CRF,
		preset:    f.cfg.Preset,
		audio:     f.cfg.AudioCodec,
		container: f.cfg.Container,
		threads:   f.cfg.Threads,
		extra:     f.cfg.ExtraOutputArgs,
	}
	spec := videoCodecs[s.codec]
	if opts.VideoCodec != "" && opts.VideoCodec != s.codec {
		sp, err := lookupCodec(opts.VideoCodec)
		if err != nil {
			return settings{}, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
		}
		spec = sp
		s.codec, s.crf, s.preset = opts.VideoCodec, sp.defaultCRF, sp.defaultPreset
	}
	if opts.CRF != nil {
		if err := spec.checkCRF(s.codec, *opts.CRF); err != nil {
			return settings{}, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
		}
		s.crf = *opts.CRF
	}
	if opts.Preset != "" {
		if err := spec.checkPreset(s.codec, opts.Preset); err != nil {
			return settings{}, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
		}
		s.preset = opts.Preset
	}
	if err := f.allow(s, opts); err != nil {
		return settings{}, err
	}
	if err := checkTrim(opts.Trim); err != nil {
		return settings{}, err
	}
	if opts.Trim != nil {
		if !f.TrimsFrames() {
			return settings{}, fmt.Errorf("%w: this worker cannot trim frames: its ffmpeg.extra_output_args set a filter", ErrInvalidOptions)
		}
		t := *opts.Trim
		s.trim = &t
		// A trimmed chunk is video only: the pictures kept would need the
		// audio cut at the same instants, and the master carries audio
		// for the whole file anyway.
		s.audio = "none"
	}
	s.hashPictures = opts.HashPictures
	return s, nil
}

// Settings returns the effective settings an Encode with opts would record
// in Result.Settings, or the ErrInvalidOptions error it would fail with. It
// runs nothing.
func (f *FFmpeg) Settings(opts Options) (map[string]string, error) {
	s, err := f.resolve(opts)
	if err != nil {
		return nil, err
	}
	return s.metadata(), nil
}

// metadata returns s as Result.Settings: codec, audio_codec and container
// always; crf, preset and threads only when passed to ffmpeg,
// extra_output_args (space-joined) only when configured, since they change
// the output too, and trim_start and trim_frames only for a trim.
func (s settings) metadata() map[string]string {
	m := map[string]string{
		"codec":       s.codec,
		"audio_codec": s.audio,
		"container":   s.container,
	}
	if s.crf >= 0 {
		m["crf"] = strconv.Itoa(s.crf)
	}
	if s.preset != "" {
		m["preset"] = s.preset
	}
	if s.threads > 0 {
		m["threads"] = strconv.Itoa(s.threads)
	}
	if len(s.extra) > 0 {
		m["extra_output_args"] = strings.Join(s.extra, " ")
	}
	addTrimSettings(m, s.trim)
	return m
}

// inputOptions restrict what ffmpeg and ffprobe may open and decode: local
// files only, only the configured demuxers, and no picture beyond
// Limits.FramePixels.
func (f *FFmpeg) inputOptions() ffmpeg.KwArgs {
	kw := ffmpeg.KwArgs{
		"protocol_whitelist": "file",
		"format_whitelist":   strings.Join(f.cfg.InputFormats, ","),
	}
	if n := f.cfg.Limits.decoderMaxPixels(); n > 0 {
		kw["max_pixels"] = strconv.FormatInt(n, 10)
	}
	return kw
}

// args builds the ffmpeg command line (without the program name) that
// encodes inPath into outPath with s. Paths are passed as "file:path" so no
// part of a name is taken for a protocol.
func (f *FFmpeg) args(inPath, outPath string, s settings) []string {
	in := f.inputOptions()
	in["nostdin"] = ""
	in["hide_banner"] = ""
	in["loglevel"] = "error"
	in["autorotate"] = "0" // keep the pixels as they are; the master writes the source's rotation
	if s.threads > 0 {
		in["threads"] = s.threads // the decoder's, as the encoder's below
	}

	maps := []string{"0:v:0"}
	out := ffmpeg.KwArgs{
		"f":        s.container,
		"c:v":      s.codec,
		"fps_mode": "passthrough", // exactly the input's frames, never duplicated or dropped
		// The input's time base, not 1/frame rate (ffmpeg's default), which
		// rounds a variable frame rate's timestamps to the average's grid
		// and gives pictures of a faster stretch the same timestamp.
		"enc_time_base:v": "-1",
	}
	if s.trim != nil {
		out["vf"] = s.trim.filter()
		// A chunk whose format changes midway (new in-band parameter
		// sets) keeps one filter graph, so trim counts its pictures
		// once; the scale ffmpeg inserts for the encoder adapts to the
		// change, as it does when the graph is rebuilt.
		in["reinit_filter"] = "0"
	}
	if s.audio == "none" {
		out["an"] = ""
	} else {
		out["c:a"] = s.audio
		maps = append(maps, "0:a?")
	}
	out["map"] = maps
	if s.crf >= 0 {
		out["crf"] = s.crf
		if s.codec == "libvpx-vp9" || s.codec == "libaom-av1" {
			out["b:v"] = "0" // constant quality rather than constrained
		}
	}
	if s.preset != "" {
		out["preset"] = s.preset
	}
	if s.threads > 0 {
		out["threads"] = s.threads
	}
	if s.codec == "libx265" {
		out["x265-params"] = "log-level=error" // x265 logs on its own otherwise
	}
	s.chunk.outputOptions(s.codec, out)

	outArg := "file:" + outPath
	input := ffmpeg.Input("file:"+inPath, in)
	output := input.Output(outArg, out)
	if s.hashPictures {
		// The same decode feeds a second output that hashes every
		// picture as decoded, before the trim: what the master compares
		// with the source's pictures.
		output = ffmpeg.MergeOutputs(output, input.Output("pipe:1", ffmpeg.KwArgs{
			"map": "0:v:0", "fps_mode": "passthrough", "f": "framehash", "hash": "murmur3",
		}))
	}
	args := output.OverWriteOutput().GetArgs()
	if len(f.cfg.ExtraOutputArgs) > 0 {
		i := len(args) - 1
		for i >= 0 && args[i] != outArg {
			i--
		}
		args = slices.Insert(args, max(i, 0), f.cfg.ExtraOutputArgs...)
	}
	return args
}

// env returns extra environment for encoders that log outside ffmpeg's
// -loglevel.
func (s settings) env() []string {
	if s.codec == "libsvtav1" {
		return []string{"SVT_LOG=1"} // errors only
	}
	return nil
}

// Encode spools in to a temporary file, checks it against the pixel limits
// (see PixelLimits), runs ffmpeg to encode it into out.Path() (probing the
// chunk's presentation meanwhile, see encodeRun), and reads what the result
// holds (probeOutput). The temporary file is removed before Encode returns. With
// opts.Trim, ffmpeg keeps only the trim's pictures (the trim filter,
// timestamps restarted at 0, no audio) and the result must hold exactly
// Trim.Frames of them. Errors: ErrInvalidOptions for opts outside the
// allowlist or an invalid trim, ErrOverrideNotAllowed for opts the
// AllowOverrides policy refuses (both before any input is read),
// ErrTooManyPixels for input beyond the Limits, ErrInvalidInput for input
// that is empty, holds no decodable video (the message carries ffmpeg's
// reason), or decodes to fewer pictures than the trim names (the message
// says how many), ErrUnavailable when ffmpeg cannot be started, and an
// error wrapping ctx.Err() (or context.DeadlineExceeded for the configured
// Timeout) when the run was cut short; ffmpeg and its children are killed
// then. Every error names the request id ctx carries (internal/reqid), if
// any.
//
// With MeasureQuality, the shard is then measured against the spooled
// input (the trim's pictures of it, for a trim) under the same ctx and
// Timeout, into Result.Quality. A measuring that fails is not an encode
// that fails: it is logged and Result.Quality stays nil. Only ctx or the
// Timeout ending while it runs fails the encode, as above.
func (f *FFmpeg) Encode(ctx context.Context, in io.Reader, out Output, opts Options) (Result, error) {
	res, err := f.encode(ctx, in, out, opts)
	return res, withRequestID(ctx, err)
}

func (f *FFmpeg) encode(ctx context.Context, in io.Reader, out Output, opts Options) (Result, error) {
	s, err := f.resolve(opts)
	if err != nil {
		return Result{}, err
	}
	spooled, size, err := f.spool(ctx, in)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if err := spooled.Remove(); err != nil {
			f.log.WarnContext(ctx, "remove spooled input", "err", err)
		}
	}()
	inPath := spooled.Path()
	if size == 0 {
		return Result{}, fmt.Errorf("%w: empty input", ErrInvalidInput)
	}

	runCtx := ctx
	if f.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, f.cfg.Timeout)
		defer cancel()
	}

	// The chunk's presentation, when the codec needs it, is probed beside
	// the pixel check and the encode's start (see encodeRun): it decodes
	// one picture, which the decoder's max_pixels bounds.
	var pres <-chan presentationResult
	if needsChunkPresentation(s.codec) {
		probeCtx, stopProbe := context.WithCancel(runCtx)
		c := f.startPresentationProbe(probeCtx, inPath)
		defer func() {
			stopProbe()
			<-c.done // no ffprobe outlives Encode
		}()
		pres = c.result
	}
	// Before anything decodes the chunk for the encode: a decompression
	// bomb is refused here, with its numbers.
	if err := f.checkPixels(runCtx, ctx, inPath); err != nil {
		return Result{}, err
	}
	run, err := f.encodeRun(runCtx, inPath, out.Path(), s, pres)
	if err != nil {
		return Result{}, err
	}
	if run.err != nil {
		return Result{}, f.failure(ctx, runCtx, run.err, run.stderr, inPath)
	}
	// ffmpeg goes on past a picture its decoder refused, and exits 0 with
	// a shard that lacks it.
	if err := f.cfg.Limits.refusedPicture(run.stderr, "while decoding the input"); err != nil {
		return Result{}, err
	}

	info, err := f.probeOutput(runCtx, out.Path())
	if se := (*proc.StartError)(nil); errors.As(err, &se) {
		return Result{}, fmt.Errorf("%w: probe output: %w", ErrUnavailable, err)
	}
	if err != nil && s.trim != nil && runCtx.Err() == nil {
		// ffmpeg exits 0 when the trim keeps nothing, leaving a
		// file without a readable video stream.
		return Result{}, s.trim.miscount(0)
	}
	if err != nil {
		return Result{}, f.timeout(ctx, runCtx, fmt.Errorf("probe output: %w", err))
	}
	video, ok := info.FirstStream("video")
	if !ok && s.trim != nil {
		return Result{}, s.trim.miscount(0)
	}
	if !ok {
		return Result{}, errors.New("probe output: no video stream")
	}
	if s.trim != nil && video.Frames != s.trim.Frames {
		return Result{}, s.trim.miscount(video.Frames)
	}
	var stats *quality.Stats
	if f.cfg.MeasureQuality {
		if stats, err = f.measure(runCtx, inPath, out.Path(), s.trim); err != nil {
			if runCtx.Err() != nil {
				return Result{}, f.timeout(ctx, runCtx, err)
			}
			f.log.WarnContext(ctx, "quality not measured", "err", tidyReason(err.Error(), inPath))
		}
	}
	var pictureHashes []byte
	if run.hashes != nil {
		if pictureHashes, err = run.hashes.Hashes(); err != nil {
			f.log.WarnContext(ctx, "picture hashes not returned", "err", err)
		}
	}
	audio, _ := info.FirstStream("audio")
	return Result{
		Encoder:         NameFFmpeg,
		VideoCodec:      video.CodecName,
		AudioCodec:      audio.CodecName,
		Container:       s.container,
		Settings:        s.metadata(),
		DurationSeconds: info.Duration,
		FrameCount:      video.Frames,
		Width:           video.Width,
		Height:          video.Height,
		EncodeTime:      run.elapsed,
		InputSize:       size,
		Quality:         stats,
		PictureHashes:   pictureHashes,
	}, nil
}

// ffmpegRun is what one ffmpeg run of an encode left.
type ffmpegRun struct {
	stderr  string // its tail
	err     error
	elapsed time.Duration
	hashes  *framehash.Collector // with settings.hashPictures
}

// run runs ffmpeg once to encode inPath into outPath with s.
func (f *FFmpeg) run(ctx context.Context, inPath, outPath string, s settings) ffmpegRun {
	args := f.args(inPath, outPath, s)
	f.log.Debug("ffmpeg start", "binary", f.cfg.Binary, "args", args)
	var r ffmpegRun
	var stdout io.Writer
	if s.hashPictures {
		r.hashes = &framehash.Collector{Max: MaxPictureHashes}
		stdout = r.hashes
	}
	start := time.Now()
	r.stderr, r.err = proc.Run(ctx, proc.Cmd{Name: f.cfg.Binary, Args: args, Env: s.env(), Stdout: stdout})
	r.elapsed = time.Since(start)
	f.log.Debug("ffmpeg done", "elapsed", r.elapsed, "err", r.err)
	return r
}

// encodeRun runs ffmpeg for s as if the chunk's presentation (pres, nil
// when the codec needs none) had been probed first, without waiting for
// the probe: ffmpeg starts at once as for a chunk that needs nothing kept
// (progressive, no HDR metadata: nearly every chunk), so the probe, about
// 0.1 s of ffprobe's start-up, runs while ffmpeg starts up rather than
// before it. A chunk that needs options after all is encoded again with
// them, the first run killed and its output overwritten. The error is
// ErrUnavailable when ffprobe cannot be started; a probe that fails
// otherwise is best effort: an input ffprobe cannot read fails the encode
// with ffmpeg's reason.
func (f *FFmpeg) encodeRun(ctx context.Context, inPath, outPath string, s settings, pres <-chan presentationResult) (ffmpegRun, error) {
	if pres == nil {
		return f.run(ctx, inPath, outPath, s), nil
	}
	firstCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := make(chan ffmpegRun, 1)
	go func() { first <- f.run(firstCtx, inPath, outPath, s) }()

	p := <-pres
	var se *proc.StartError
	switch {
	case errors.As(p.err, &se):
		cancel()
		<-first
		return ffmpegRun{}, fmt.Errorf("%w: probe chunk presentation: %w", ErrUnavailable, p.err)
	case p.err != nil:
		f.log.Debug("probe chunk presentation", "err", p.err)
	}
	if p.c == s.chunk {
		return <-first, nil
	}
	cancel()
	<-first
	f.log.Debug("chunk presentation needs encoder options: encoding again", "presentation", fmt.Sprintf("%+v", p.c))
	s.chunk = p.c
	return f.run(ctx, inPath, outPath, s), nil
}

// probeOutput reports what the shard at path holds: read by readMatroska
// when it can (the default container, no ffprobe process), by ffprobe
// otherwise.
func (f *FFmpeg) probeOutput(ctx context.Context, path string) (ProbeInfo, error) {
	info, err := readMatroska(path)
	if err == nil {
		return info, nil
	}
	f.log.Debug("shard probed by ffprobe", "reason", err)
	return probe(ctx, f.cfg.FFprobe, path, nil)
}

// measure returns the quality of the shard at outPath against the pictures
// of the input at inPath it was encoded from: trim's, or all of them. The
// input is read only with the configured demuxers, as the encode read it.
func (f *FFmpeg) measure(ctx context.Context, inPath, outPath string, trim *Trim) (*quality.Stats, error) {
	ref := quality.Input{Path: inPath, Formats: f.cfg.InputFormats}
	if trim != nil {
		ref.Skip, ref.Frames = trim.Start, trim.Frames
	}
	tools := quality.Tools{FFmpeg: f.cfg.Binary, FFprobe: f.cfg.FFprobe}
	start := time.Now()
	frames, err := quality.MeasureQuality(ctx, tools, ref, quality.Input{Path: outPath}, quality.Options{})
	if err != nil {
		return nil, err
	}
	stats := quality.Summarize(frames)
	// stats, not its floats: a JSON log handler cannot write +Inf, and
	// Stats marshals it as null.
	f.log.Debug("quality measured", "elapsed", time.Since(start), "quality", stats)
	return &stats, nil
}

// spool copies in to a new scratch file (CreateTemp, or in TempDir) and
// returns it, open, and its size. On error nothing is left behind.
func (f *FFmpeg) spool(ctx context.Context, in io.Reader) (_ TempFile, n int64, err error) {
	tmp, err := f.createTemp("videoshard-in-*")
	if err != nil {
		return nil, 0, fmt.Errorf("spool input: %w", err)
	}
	if n, err = io.Copy(tmp, ctxReader{ctx: ctx, r: in}); err != nil {
		_ = tmp.Remove()
		return nil, 0, fmt.Errorf("spool input: %w", err)
	}
	return tmp, n, nil
}

func (f *FFmpeg) createTemp(pattern string) (TempFile, error) {
	if f.cfg.CreateTemp != nil {
		return f.cfg.CreateTemp(pattern)
	}
	tmp, err := os.CreateTemp(f.cfg.TempDir, pattern)
	if err != nil {
		return nil, err
	}
	return osTempFile{tmp}, nil
}

// TempFile is a scratch file of FFmpegConfig.CreateTemp.
type TempFile interface {
	io.Writer
	// Path is the path ffmpeg and ffprobe open it by.
	Path() string
	// Remove closes and removes it.
	Remove() error
}

// osTempFile is a TempFile in TempDir, opened by its name.
type osTempFile struct{ *os.File }

func (t osTempFile) Path() string { return t.Name() }

func (t osTempFile) Remove() error {
	cerr := t.Close()
	if err := os.Remove(t.Name()); err != nil {
		return err
	}
	return cerr
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// timeout marks err as the configured Timeout's doing when only runCtx
// (not the caller's ctx) has ended.
func (f *FFmpeg) timeout(ctx, runCtx context.Context, err error) error {
	if runCtx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("chunk timeout %v exceeded: %w", f.cfg.Timeout, err)
	}
	return err
}

// badInputHints are ffmpeg messages that mean the input itself is at fault.
var badInputHints = []string{
	"Invalid data found when processing input",
	"moov atom not found",
	"Format not on whitelist",
	"matches no streams",
	"could not find codec parameters",
	"EBML header parsing failed",
	"does not contain any stream",
	"File ended prematurely",
	"Cannot determine format of input stream",
	"partial file",
	"Error while decoding stream",
	"Invalid NAL unit",
	"corrupt",
}

// unencodableHints are ffmpeg messages that mean the encoder, as
// configured, refuses this input (a 4:2:0 picture of odd width for
// libx264, say): deterministic, so no retry helps.
var unencodableHints = []string{
	"Error while opening encoder",
	"Error initializing output stream",
	"not divisible by 2",
}

// failure classifies a failed ffmpeg run.
func (f *FFmpeg) failure(ctx, runCtx context.Context, err error, stderr, inPath string) error {
	var se *proc.StartError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if runCtx.Err() != nil {
		return f.timeout(ctx, runCtx, err)
	}
	if err := f.cfg.Limits.refusedPicture(stderr, "while decoding the input"); err != nil {
		return err
	}
	reason := tidyReason(stderr, inPath)
	for _, hint := range badInputHints {
		if strings.Contains(stderr, hint) {
			return fmt.Errorf("%w: %s", ErrInvalidInput, reason)
		}
	}
	for _, hint := range unencodableHints {
		if strings.Contains(stderr, hint) {
			return fmt.Errorf("%w: the encoder cannot encode it as configured: %s", ErrInvalidInput, reason)
		}
	}
	// ffmpeg's words are not conclusive: ask ffprobe whether the input has
	// a video stream at all.
	info, perr := probe(runCtx, f.cfg.FFprobe, inPath, f.inputOptions())
	switch {
	case runCtx.Err() != nil:
		return f.timeout(ctx, runCtx, fmt.Errorf("probe input after ffmpeg failed%s: %w", withReason(reason), perr))
	case errors.As(perr, &se):
		return fmt.Errorf("%w%s (input not checked: %v)", err, withReason(reason), perr)
	case perr != nil:
		return fmt.Errorf("%w: %s", ErrInvalidInput, firstNonEmpty(reason, tidyReason(perr.Error(), inPath)))
	case !hasVideo(info):
		return fmt.Errorf("%w: no decodable video stream%s", ErrInvalidInput, withReason(reason))
	}
	return fmt.Errorf("%w%s", err, withReason(reason))
}

// hasVideo reports whether info has a video stream of a known codec.
func hasVideo(info ProbeInfo) bool {
	for _, s := range info.Streams {
		if s.CodecType == "video" && s.CodecName != "" {
			return true
		}
	}
	return false
}

// tidyReason turns a stderr tail into one line for an error message,
// naming the spooled input "input" instead of its temporary path.
func tidyReason(stderr, inPath string) string {
	s := stderr
	if inPath != "" {
		s = replacePath(s, "file:"+inPath, "input")
		s = replacePath(s, inPath, "input")
	}
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "; ")
}

// replacePath replaces path in s with repl where it is a whole path: not
// where it is the start of a longer name (/proc/1/fd/15 in /proc/1/fd/150).
func replacePath(s, path, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, path)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(path)
		b.WriteString(s[:i])
		if end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] >= 'A' && s[end] <= 'Z' || s[end] >= 'a' && s[end] <= 'z' || s[end] == '_' || s[end] == '-') {
			b.WriteString(path)
		} else {
			b.WriteString(repl)
		}
		s = s[end:]
	}
}

// withReason formats a non-empty reason (or stderr tail) as ": reason".
func withReason(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + tidyReason(reason, "")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
