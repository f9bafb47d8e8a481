package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/client"
	"github.com/videoshard/videoshard/master/media"
	pb "github.com/videoshard/videoshard/proto"
)

// JobConfig is what encode, reconstruct and status read: flags, then the
// environment (VIDEOSHARD_MASTER_ + key), then the config file.
type JobConfig struct {
	Workers        []string          // key workers: HOST:PORT list
	VideoID        string            // key video_id
	SegmentSeconds float64           // key segment_seconds
	StateDir       string            // key state_dir
	Codec, Preset  string            // keys codec, preset
	CRF            int               // key crf; -1: the workers' default
	PerWorkerCap   int               // key per_worker_cap; 0: each worker's own limit
	SendAhead      bool              // key send_ahead
	MaxAttempts    int               // key max_attempts
	ChunkTimeout   time.Duration     // key chunk_timeout
	StragglerMin   time.Duration     // key straggler_min
	FFmpeg         string            // key ffmpeg
	FFprobe        string            // key ffprobe
	Verify         master.VerifyMode // key verify
	MinPSNR        float64           // key min_psnr
	Replicas       int               // key replicas
	WorkersFile    string            // key workers_file
	// Dial reaches the workers (keys tls_ca, tls_cert, tls_key,
	// tls_server_name, token of Config).
	Dial client.DialOptions
}

// jobKeys are the job keys with their defaults; configKeys adds them.
func jobDefaults() map[string]any {
	return map[string]any{
		"workers":               "",
		"video_id":              "",
		"segment_seconds":       float64(master.DefaultSegmentSeconds),
		"state_dir":             "./" + master.DefaultStateDir,
		"codec":                 "",
		"crf":                   -1,
		"preset":                "",
		"per_worker_cap":        0,
		"send_ahead":            true,
		"max_attempts":          master.DefaultMaxAttempts,
		"chunk_timeout":         master.DefaultChunkTimeout.String(),
		"straggler_min":         master.DefaultStragglerMin.String(),
		"ffmpeg":                "ffmpeg",
		"ffprobe":               "ffprobe",
		"verify":                string(master.VerifyFull),
		"min_psnr":              master.DefaultMinPSNR,
		"download_idle_timeout": client.DefaultDownloadIdleTimeout.String(),
		"replicas":              master.DefaultReplicas,
		"workers_file":          "",
	}
}

// bindJobFlags binds the flags a job command defines to their keys. It runs
// when the command runs, so commands can share keys.
func bindJobFlags(v *viper.Viper, flags *pflag.FlagSet) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		key := strings.ReplaceAll(f.Name, "-", "_")
		if _, ok := jobDefaults()[key]; ok && err == nil {
			err = v.BindPFlag(key, f)
		}
	})
	return err
}

func loadJobConfig(v *viper.Viper) (JobConfig, error) {
	base, err := loadConfig(v) // merges the file, checks the shared keys
	if err != nil {
		return JobConfig{}, err
	}
	c := JobConfig{Dial: base.dialOptions()}
	var errs []error
	num := func(key string, parse func(string) error) {
		if err := parse(strings.TrimSpace(fmt.Sprint(v.Get(key)))); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a number", key, fmt.Sprint(v.Get(key))))
		}
	}
	c.Workers = splitList(v.Get("workers"))
	c.VideoID = strings.TrimSpace(v.GetString("video_id"))
	num("segment_seconds", func(s string) (err error) { c.SegmentSeconds, err = strconv.ParseFloat(s, 64); return })
	c.StateDir = v.GetString("state_dir")
	c.Codec, c.Preset = v.GetString("codec"), v.GetString("preset")
	num("crf", func(s string) (err error) { c.CRF, err = strconv.Atoi(s); return })
	num("per_worker_cap", func(s string) (err error) { c.PerWorkerCap, err = strconv.Atoi(s); return })
	c.SendAhead = v.GetBool("send_ahead")
	num("max_attempts", func(s string) (err error) { c.MaxAttempts, err = strconv.Atoi(s); return })
	c.FFmpeg, c.FFprobe = v.GetString("ffmpeg"), v.GetString("ffprobe")
	num("min_psnr", func(s string) (err error) { c.MinPSNR, err = strconv.ParseFloat(s, 64); return })
	num("replicas", func(s string) (err error) { c.Replicas, err = strconv.Atoi(s); return })
	c.WorkersFile = strings.TrimSpace(v.GetString("workers_file"))
	mode, err := master.ParseVerifyMode(v.GetString("verify"))
	if err != nil {
		errs = append(errs, fmt.Errorf("verify: %w", err))
	}
	c.Verify = mode
	duration := func(key string, to *time.Duration) {
		d, err := time.ParseDuration(strings.TrimSpace(v.GetString(key)))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration", key, v.GetString(key)))
		}
		*to = d
	}
	duration("download_idle_timeout", &c.Dial.DownloadIdleTimeout)
	duration("chunk_timeout", &c.ChunkTimeout)
	duration("straggler_min", &c.StragglerMin)
	switch {
	case len(errs) > 0:
	case !(c.MinPSNR > 0) || math.IsInf(c.MinPSNR, 0):
		errs = append(errs, fmt.Errorf("min_psnr: %g is not a positive number of dB", c.MinPSNR))
	case c.SegmentSeconds <= 0:
		errs = append(errs, fmt.Errorf("segment_seconds: %g is not positive", c.SegmentSeconds))
	case c.CRF < -1:
		errs = append(errs, fmt.Errorf("crf: %d is negative", c.CRF))
	case c.PerWorkerCap < 0:
		errs = append(errs, fmt.Errorf("per_worker_cap: %d is negative", c.PerWorkerCap))
	case c.Replicas < 1:
		errs = append(errs, fmt.Errorf("replicas: %d is less than 1", c.Replicas))
	case c.MaxAttempts < 1:
		errs = append(errs, fmt.Errorf("max_attempts: %d is less than 1", c.MaxAttempts))
	case c.StateDir == "":
		errs = append(errs, errors.New("state_dir: empty"))
	}
	return c, errors.Join(errs...)
}

// splitList reads a list given as a YAML list or a comma-separated string.
func splitList(v any) []string {
	var parts []string
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			parts = append(parts, fmt.Sprint(e))
		}
	case []string:
		parts = t
	default:
		parts = strings.Split(fmt.Sprint(t), ",")
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// job turns the config into the master's job settings.
func (c JobConfig) job(input, output string) master.JobConfig {
	var enc *pb.EncodingOptions
	if c.Codec != "" || c.Preset != "" || c.CRF >= 0 {
		enc = &pb.EncodingOptions{VideoCodec: c.Codec, Preset: c.Preset}
		if c.CRF >= 0 {
			crf := int32(c.CRF)
			enc.Crf = &crf
		}
	}
	return master.JobConfig{
		Input: input, Output: output, VideoID: c.VideoID, SegmentSeconds: c.SegmentSeconds, StateDir: c.StateDir,
		Tools:  media.Tools{FFmpeg: c.FFmpeg, FFprobe: c.FFprobe},
		Verify: c.Verify, MinPSNR: c.MinPSNR, Replicas: c.Replicas, WorkersFile: c.WorkersFile,
		Dispatch: master.DispatchConfig{
			Workers: c.Workers, PerWorkerCap: c.PerWorkerCap, NoSendAhead: !c.SendAhead, MaxAttempts: c.MaxAttempts, Encoding: enc,
			ChunkTimeout: c.ChunkTimeout, StragglerMin: c.StragglerMin, Dial: c.Dial,
		},
		Progress: os.Stderr,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func (a *app) encodeCmd() *cobra.Command {
	var (
		output                     string
		force, cleanup             bool
		metricsFile, metricsListen string
	)
	cmd := &cobra.Command{
		Use:   "encode --workers HOST:PORT[,HOST:PORT...] --output OUT [flags] INPUT",
		Short: "Encode a video across workers and rebuild it, verified frame for frame",
		Long: `Encode a video across workers: probe it (decoding every picture once), split
its video stream into chunks of --segment-seconds wherever its keyframes are
(each chunk is decoded and compared picture by picture with the source
before it is sent), encode them on the workers, fetch the shards back as
they are stored and measure their pictures against the source's (PSNR and
SSIM, --verify), join them with the source's audio and subtitles (carried
once, never chunked), and verify the output against the source. A chunk
below --min-psnr is encoded again once, then fails the job.

The chunk map is saved in the state directory after every chunk. Run the
same command again after a failure or Ctrl-C to resume: chunks the workers
still hold are not encoded again. The output's extension picks its
container (.mkv, .mp4, .mov, .webm). An existing output is refused unless
--force; an output that is the input (or a link to it) always is.

The job's video is pinned on every worker while the job runs (a worker
short of disk does not evict it) and unpinned once the output is verified;
--cleanup then deletes the job's shards from the workers.

--replicas R keeps each chunk on R distinct workers (in other zones, then
other hosts, first): copied worker to worker as it is stored, each copy
verified by checksum. The job exits 1 when a chunk has fewer copies
although R workers were healthy. --workers-file names more workers, read
again while the job runs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.jobConfig(cmd)
			if err != nil {
				return err
			}
			if len(cfg.Workers) == 0 && cfg.WorkersFile == "" {
				return errors.New("--workers: name at least one worker (or --workers-file)")
			}
			job := cfg.job(args[0], output)
			job.Force, job.Cleanup = force, cleanup
			var jm *jobMetrics
			if metricsFile != "" || metricsListen != "" {
				jm = newJobMetrics()
				job.OnEvent = jm.event
			}
			if metricsListen != "" {
				stop, err := jm.serve(cmd.Context(), metricsListen, cmd.ErrOrStderr())
				if err != nil {
					return failed(err)
				}
				defer stop()
			}
			sum, err := master.Encode(cmd.Context(), job)
			if perr := a.printSummary(sum, err); perr != nil {
				return perr
			}
			if metricsFile != "" {
				if werr := writeReport(metricsFile, jm.report(sum, jobState(cfg, job, sum), err)); werr != nil && err == nil {
					err = werr
				}
			}
			return failed(err)
		},
	}
	a.jobFlags(cmd, &output, &force, true)
	f := cmd.Flags()
	f.BoolVar(&cleanup, "cleanup", false, "delete the job's shards from the workers once the output is verified")
	f.StringVar(&metricsFile, "metrics-file", "", "write a JSON report of the job here at its end (per chunk: worker, encode time, sizes, attempts, quality; and totals)")
	f.StringVar(&metricsListen, "metrics-listen", "", "serve the job's progress as Prometheus metrics at http://ADDR/metrics while it runs")
	f.Int("replicas", 0, "verified copies of each chunk, on distinct workers, copied worker to worker (default 1)")
	f.String("workers-file", "", "file of more workers, one HOST:PORT a line ('#' comments), read again while the job runs")
	return cmd
}

// jobState is the chunk map a job left, for its report; nil when there is
// none (the job failed before its split was saved).
func jobState(cfg JobConfig, job master.JobConfig, sum master.Summary) *master.JobState {
	id := cmp.Or(sum.VideoID, job.VideoID, master.DefaultVideoID(job.Input))
	state, err := master.LoadState(cfg.StateDir, id)
	if err != nil {
		return nil
	}
	return state
}

func (a *app) reconstructCmd() *cobra.Command {
	var (
		output string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "reconstruct --video-id ID --output OUT [--workers ...]",
		Short: "Rebuild a video from the shards on the workers, without encoding",
		Long: `Rebuild a video from its shards: from the chunk map in the state directory,
or, with none, from what the workers named by --workers hold for the video.
With a chunk map whose input is still in place, the input's audio is muxed
in and the output verified against it. An existing output is refused unless
--force; the chunk map's input always is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.jobConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.VideoID == "" {
				return errors.New("--video-id: empty")
			}
			job := cfg.job("", output)
			job.Force = force
			sum, err := master.Reconstruct(cmd.Context(), job)
			if perr := a.printSummary(sum, err); perr != nil {
				return perr
			}
			return failed(err)
		},
	}
	a.jobFlags(cmd, &output, &force, false)
	return cmd
}

func (a *app) statusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status --video-id ID [--state-dir DIR]",
		Short: "Print a job's chunk map: which worker holds each chunk",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.jobConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.VideoID == "" {
				return errors.New("--video-id: empty")
			}
			state, err := master.LoadState(cfg.StateDir, cfg.VideoID)
			if err != nil {
				return failed(err)
			}
			return a.printState(state)
		},
	}
	f := cmd.Flags()
	f.String("video-id", "", "the job's video id")
	f.String("state-dir", "", "directory of chunk maps (default ./master_state)")
	return cmd
}

// jobFlags defines the flags of encode and reconstruct. --force is a flag
// only, never a config key: a config file must not make every job replace
// files.
func (a *app) jobFlags(cmd *cobra.Command, output *string, force *bool, encode bool) {
	f := cmd.Flags()
	f.StringVarP(output, "output", "o", "", "file to write; its extension picks the container")
	f.BoolVar(force, "force", false, "replace --output if it exists (never the input)")
	f.String("workers", "", "workers, HOST:PORT[,HOST:PORT...]")
	f.String("video-id", "", "the job's name on the workers (default: from the input's file name)")
	f.String("state-dir", "", "directory of chunk maps (default ./master_state)")
	f.String("ffmpeg", "", "ffmpeg binary (default ffmpeg)")
	f.String("ffprobe", "", "ffprobe binary (default ffprobe)")
	f.String("verify", "", "how many pictures to compare with the source's: full (every one), sample (a few per chunk) or off (default full)")
	f.Duration("download-idle-timeout", 0, fmt.Sprintf("abandon a shard download that receives nothing for this long (default %v); a download also gets its size at %d MiB/s on top", client.DefaultDownloadIdleTimeout, client.MinDownloadRate>>20))
	f.Float64("min-psnr", 0, fmt.Sprintf("PSNR floor in dB for each chunk's worst compared picture; a chunk below it is encoded again once (default %g)", master.DefaultMinPSNR))
	if encode {
		f.Float64("segment-seconds", 0, "target chunk length in seconds (default 10)")
		f.String("codec", "", "video encoder for the workers, e.g. libx264 (default: the workers')")
		f.Int("crf", -1, "constant rate factor (default: the workers')")
		f.String("preset", "", "encoder preset (default: the workers')")
		f.Int("per-worker-cap", 0, "most chunks in flight per worker (default: each worker's max_concurrent_tasks)")
		f.Bool("send-ahead", true, "once every worker is busy, send each one chunk more, queued in the worker for its next free slot")
		f.Int("max-attempts", 0, "tries per chunk before the job fails (default 5)")
		f.Duration("chunk-timeout", 0, fmt.Sprintf("give up an attempt at a chunk after this long, upload and encode included (default %v)", master.DefaultChunkTimeout))
		f.Duration("straggler-min", 0, fmt.Sprintf("take a chunk back from a worker that has not answered in %g times its pace for the chunk's frames (its own or the job's, whichever is slower) once a few chunks are stored, and never in less than this (default %v); it goes to another worker, not counted as an attempt", float64(master.DefaultStragglerFactor), master.DefaultStragglerMin))
	}
	mustRequire(cmd, "output")
}

// jobConfig binds the command's flags (only those set override) and loads.
func (a *app) jobConfig(cmd *cobra.Command) (JobConfig, error) {
	for k, val := range jobDefaults() {
		a.v.SetDefault(k, val)
	}
	if err := bindJobFlags(a.v, cmd.Flags()); err != nil {
		return JobConfig{}, err
	}
	return loadJobConfig(a.v)
}
