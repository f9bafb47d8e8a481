// Command master encodes a video across videoshard workers (encode,
// reconstruct, status: package master) and talks to one worker over gRPC
// (health, process-chunk, list, metadata, get-shard: package
// master/client). It reads flags and wires; the work is in those packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/videoshard/videoshard/master/client"
	pb "github.com/videoshard/videoshard/proto"
)

func main() {
	// The first signal cancels the calls in flight; once it has, the
	// default handling is back, so a second one kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs the command line args and returns the exit status.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if re, ok := errors.AsType[*runError](err); ok {
		fmt.Fprintf(stderr, "master: %s\n", describe(re.err))
		return exitFailure
	}
	fmt.Fprintf(stderr, "master: %s\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
	return exitUsage
}

// app holds what the subcommands share.
type app struct {
	v      *viper.Viper
	stdout io.Writer
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	a := &app{v: newViper(), stdout: stdout}
	root := &cobra.Command{
		Use:   "master",
		Short: "Encode videos across videoshard workers, and talk to one worker",
		Long: `master encodes a video across videoshard workers (encode, reconstruct,
status), keeps their copies (repair, rebalance), deletes a video's shards
(delete) and talks to one worker over gRPC
(health, process-chunk, list, metadata, get-shard).

Settings come from flags, then the environment (VIDEOSHARD_MASTER_WORKER,
VIDEOSHARD_MASTER_JSON, VIDEOSHARD_MASTER_TIMEOUT, VIDEOSHARD_MASTER_CONFIG),
then the YAML file named by --config (keys worker, json, timeout).

Workers that serve TLS: --tls-ca (and --tls-cert/--tls-key for mutual TLS,
--tls-server-name when the certificate names another host); any of them
turns TLS on, otherwise the master speaks plaintext. Workers that require a
token: --token, better VIDEOSHARD_MASTER_TOKEN (flags show in ps). Every
command uses them (keys tls_ca, tls_cert, tls_key, tls_server_name, token).
Without TLS the token crosses the network in clear text.

Exit status: 0 on success, 1 when the command fails (the message ends with
the gRPC code), 2 on bad usage.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)

	d := DefaultConfig()
	pf := root.PersistentFlags()
	pf.String("worker", d.Worker, "worker address, HOST:PORT")
	pf.Bool("json", d.JSON, "print JSON instead of tables")
	pf.Duration("timeout", d.Timeout, "give up on the command after this long (0: never)")
	pf.String("config", "", "YAML config file")
	for _, name := range []string{"worker", "json", "timeout", "config"} {
		if err := a.v.BindPFlag(name, pf.Lookup(name)); err != nil {
			panic(err) // the flag is defined just above
		}
	}
	pf.String("tls-ca", "", "PEM CA file to verify workers' TLS certificates (default: the system's roots); turns TLS on")
	pf.String("tls-cert", "", "PEM client certificate for workers that require mutual TLS (with --tls-key); turns TLS on")
	pf.String("tls-key", "", "PEM private key of --tls-cert")
	pf.String("tls-server-name", "", "name the workers' certificates must carry (default: the host dialled); turns TLS on")
	pf.String("token", "", "bearer token for workers with auth.tokens (prefer VIDEOSHARD_MASTER_TOKEN: flags show in ps)")
	for flag, key := range securityKeys {
		if err := a.v.BindPFlag(key, pf.Lookup(flag)); err != nil {
			panic(err) // the flag is defined just above
		}
	}

	root.AddCommand(a.healthCmd(), a.processChunkCmd(), a.listCmd(), a.metadataCmd(), a.getShardCmd(),
		a.encodeCmd(), a.reconstructCmd(), a.statusCmd(), a.deleteCmd(), a.repairCmd(), a.rebalanceCmd())
	return root
}

// run loads the configuration, connects and calls fn with a context that
// ends at the configured timeout. Its errors are run errors; everything
// before it is usage.
func (a *app) run(cmd *cobra.Command, fn func(context.Context, *client.Client, printer) error) error {
	cfg, err := loadConfig(a.v)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	c, err := connect(ctx, cfg)
	if err != nil {
		return failed(err)
	}
	defer c.Close()
	return failed(fn(ctx, c, printer{w: a.stdout, asJSON: cfg.JSON}))
}

func (a *app) healthCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Show the worker's health (exits 1 when it is unhealthy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.run(cmd, runHealth)
		},
	}
}

func (a *app) processChunkCmd() *cobra.Command {
	var (
		req           processRequest
		codec, preset string
		crf           int32
	)
	cmd := &cobra.Command{
		Use:   "process-chunk --video-id ID --chunk-index N [--codec C] [--crf N] [--preset P] FILE",
		Short: "Send FILE to the worker as one chunk to encode and store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkChunk(req.VideoID, req.ChunkIndex); err != nil {
				return err
			}
			req.File = args[0]
			if codec != "" || preset != "" || cmd.Flags().Changed("crf") {
				req.Encoding = &pb.EncodingOptions{VideoCodec: codec, Preset: preset}
				if cmd.Flags().Changed("crf") {
					req.Encoding.Crf = &crf
				}
			}
			return a.run(cmd, func(ctx context.Context, c *client.Client, p printer) error {
				return runProcessChunk(ctx, c, p, req)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.VideoID, "video-id", "", "video the chunk belongs to")
	f.Int32Var(&req.ChunkIndex, "chunk-index", 0, "position of the chunk in the video, from 0")
	f.StringVar(&codec, "codec", "", "video codec, e.g. libx264 (default: the worker's)")
	f.Int32Var(&crf, "crf", 0, "constant rate factor (default: the worker's)")
	f.StringVar(&preset, "preset", "", "encoder preset, e.g. fast (default: the worker's)")
	mustRequire(cmd, "video-id", "chunk-index")
	return cmd
}

func (a *app) listCmd() *cobra.Command {
	var videoID string
	cmd := &cobra.Command{
		Use:   "list [--video-id ID]",
		Short: "List the stored shards, of one video or of all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.run(cmd, func(ctx context.Context, c *client.Client, p printer) error {
				return runList(ctx, c, p, videoID)
			})
		},
	}
	cmd.Flags().StringVar(&videoID, "video-id", "", "list only this video")
	return cmd
}

func (a *app) metadataCmd() *cobra.Command {
	var videoID string
	cmd := &cobra.Command{
		Use:   "metadata --video-id ID",
		Short: "Show the metadata of every stored chunk of a video",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if videoID == "" {
				return errors.New("--video-id: empty")
			}
			return a.run(cmd, func(ctx context.Context, c *client.Client, p printer) error {
				return runMetadata(ctx, c, p, videoID)
			})
		},
	}
	cmd.Flags().StringVar(&videoID, "video-id", "", "the video")
	mustRequire(cmd, "video-id")
	return cmd
}

func (a *app) getShardCmd() *cobra.Command {
	var (
		location, videoID, output string
		chunkIndex                int32
		force                     bool
	)
	cmd := &cobra.Command{
		Use:   "get-shard (--location LOC | --video-id ID --chunk-index N) --output FILE",
		Short: "Download a shard into FILE, verified against its checksum",
		Long: `Download a shard into FILE, verified against its checksum.

FILE appears atomically, only once the whole shard has arrived and matched
the checksum in its metadata. An existing FILE is replaced only with --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &pb.GetShardRequest{ShardLocation: location}
			if location == "" {
				if err := checkChunk(videoID, chunkIndex); err != nil {
					return err
				}
				req = &pb.GetShardRequest{VideoId: videoID, ChunkIndex: &chunkIndex}
			}
			if output == "" {
				return errors.New("--output: empty")
			}
			if _, err := os.Lstat(output); err == nil && !force {
				return fmt.Errorf("--output %s exists: add --force to replace it", output)
			}
			return a.run(cmd, func(ctx context.Context, c *client.Client, p printer) error {
				return runGetShard(ctx, c, p, req, output)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&location, "location", "", "shard location, as process-chunk or list printed it")
	f.StringVar(&videoID, "video-id", "", "video of the shard (with --chunk-index)")
	f.Int32Var(&chunkIndex, "chunk-index", 0, "chunk of the shard (with --video-id)")
	f.StringVarP(&output, "output", "o", "", "file to write the shard to")
	f.BoolVar(&force, "force", false, "replace an existing --output")
	mustRequire(cmd, "output")
	cmd.MarkFlagsOneRequired("location", "video-id")
	cmd.MarkFlagsMutuallyExclusive("location", "video-id")
	cmd.MarkFlagsMutuallyExclusive("location", "chunk-index")
	cmd.MarkFlagsRequiredTogether("video-id", "chunk-index")
	return cmd
}

// checkChunk refuses what no worker would accept as a chunk's name.
func checkChunk(videoID string, chunkIndex int32) error {
	if videoID == "" {
		return errors.New("--video-id: empty")
	}
	if chunkIndex < 0 {
		return fmt.Errorf("--chunk-index: negative %d", chunkIndex)
	}
	return nil
}

func mustRequire(cmd *cobra.Command, names ...string) {
	for _, name := range names {
		if err := cmd.MarkFlagRequired(name); err != nil {
			panic(err) // the flag is defined by the caller
		}
	}
}
