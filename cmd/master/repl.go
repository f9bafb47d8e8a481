package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/videoshard/videoshard/master"
)

func (a *app) repairCmd() *cobra.Command {
	var (
		all      bool
		input    string
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "repair (--video-id ID | --all) [--workers ...] [--replicas R] [--parallel N] [--input SOURCE]",
		Short: "Verify every copy of a video's chunks, replace bad ones, restore the replicas",
		Long: `Check every copy the chunk map records of each chunk: download it and verify
its bytes against the map's checksum and size. A corrupt copy is deleted
from its worker, a lost one dropped from the map, and a chunk with fewer good
copies than --replicas (default: the chunk map's) is copied from a good copy
onto workers that hold none (--workers and the map's), in other zones, then
other hosts, first. A chunk with no good copy left is encoded again from
--input (the chunk map's source, unchanged). --all repairs every chunk map
in the state directory, starting with the chunks the workers report
quarantined. --parallel chunks are copied at once. Exits 1 when a chunk is left with fewer copies than wanted
while there were healthy workers enough.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.jobConfig(cmd)
			if err != nil {
				return err
			}
			if all == (cfg.VideoID != "") {
				return errors.New("name one --video-id, or --all")
			}
			if parallel < 1 {
				return fmt.Errorf("--parallel: %d is less than 1", parallel)
			}
			job := cfg.job(input, "")
			// Only the flag overrides the chunk maps: viper's IsSet is true
			// for the key's default too, and the replicas key of a config
			// file is encode's.
			if !cmd.Flags().Changed("replicas") {
				job.Replicas = 0 // each chunk map's
			}
			rep, err := master.Repair(cmd.Context(), master.RepairConfig{Job: job, All: all, Parallel: parallel})
			if perr := a.printRepair(rep); perr != nil {
				return perr
			}
			return failed(err)
		},
	}
	f := cmd.Flags()
	f.String("video-id", "", "the video to repair")
	f.BoolVar(&all, "all", false, "repair every chunk map in the state directory")
	f.String("workers", "", "more workers to check and copy onto, HOST:PORT[,HOST:PORT...]")
	f.String("state-dir", "", "directory of chunk maps (default ./master_state)")
	f.Int("replicas", 0, "copies each chunk must have (default: the chunk map's)")
	f.StringVar(&input, "input", "", "the chunk map's source, to encode again the chunks with no good copy")
	f.IntVar(&parallel, "parallel", master.DefaultRepairParallel, "under-replicated chunks copied at once, worker to worker")
	f.String("ffmpeg", "", "ffmpeg binary (default ffmpeg)")
	f.String("ffprobe", "", "ffprobe binary (default ffprobe)")
	return cmd
}

func (a *app) printRepair(r master.RepairReport) error {
	p := printer{w: a.stdout, asJSON: a.v.GetBool("json")}
	if p.asJSON {
		return p.writeJSON(r)
	}
	rows := make([][]string, 0, len(r.Findings))
	for _, f := range r.Findings {
		rows = append(rows, []string{f.VideoID, strconv.Itoa(f.Chunk), dash(f.Worker), f.Found, dash(f.Action), dash(f.Detail)})
	}
	if err := p.table([]string{"VIDEO", "CHUNK", "WORKER", "FOUND", "DONE", "DETAIL"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(p.w, "\n%d videos, %d chunks, %d copies verified byte for byte", r.Videos, r.Chunks, r.Copies)
	if r.Copied > 0 {
		fmt.Fprintf(p.w, "; %d copies made (%s) in %.1f s", r.Copied, byteCount(r.CopiedBytes), r.CopySeconds)
	}
	if len(r.Short) > 0 {
		fmt.Fprintf(p.w, "; short of copies: %v", r.Short)
	}
	fmt.Fprintln(p.w)
	return nil
}

func (a *app) rebalanceCmd() *cobra.Command {
	var (
		tolerance float64
		maxMoves  int
	)
	cmd := &cobra.Command{
		Use:   "rebalance --workers HOST:PORT,HOST:PORT[,...] [--tolerance 0.1]",
		Short: "Move shards from the fullest workers to the emptiest",
		Long: `Move shards from the workers storing the most bytes to those storing the
least until every worker is within --tolerance of the mean (a fraction:
0.1 is 10%). A move copies the shard worker to worker, verifies the copy's
checksum against the chunk map's, records it in the chunk map (in the state
directory) and only then deletes the source's copy, so no chunk has fewer
good copies than before; chunks no chunk map names move too (checked
against the worker's listing). A move that would put a chunk's copies in
fewer zones is not made.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.jobConfig(cmd)
			if err != nil {
				return err
			}
			if len(cfg.Workers) < 2 {
				return errors.New("--workers: name two workers at least")
			}
			if !(tolerance > 0) || maxMoves < 0 {
				return errors.New("--tolerance must be positive, --max-moves not negative")
			}
			rep, err := master.Rebalance(cmd.Context(), master.RebalanceConfig{Job: cfg.job("", ""), Tolerance: tolerance, MaxMoves: maxMoves})
			if perr := a.printRebalance(rep); perr != nil {
				return perr
			}
			return failed(err)
		},
	}
	f := cmd.Flags()
	f.String("workers", "", "the workers to balance, HOST:PORT[,HOST:PORT...]")
	f.String("state-dir", "", "directory of chunk maps to keep in step (default ./master_state)")
	f.Float64Var(&tolerance, "tolerance", master.DefaultTolerance, "how far from the mean each worker's bytes may stay, as a fraction of it")
	f.IntVar(&maxMoves, "max-moves", master.DefaultMaxMoves, "most shards moved in one run")
	return cmd
}

func (a *app) printRebalance(r master.RebalanceReport) error {
	p := printer{w: a.stdout, asJSON: a.v.GetBool("json")}
	if p.asJSON {
		return p.writeJSON(r)
	}
	var rows [][]string
	for _, w := range slices.Sorted(maps.Keys(r.Before)) {
		rows = append(rows, []string{w, byteCount(r.Before[w]), byteCount(r.After[w])})
	}
	if err := p.table([]string{"WORKER", "BEFORE", "AFTER"}, rows); err != nil {
		return err
	}
	moved, bytes, failedMoves := 0, int64(0), 0
	for _, m := range r.Moves {
		if m.Error != "" {
			failedMoves++
			fmt.Fprintf(p.w, "move %s chunk %d %s -> %s failed: %s\n", m.VideoID, m.Chunk, m.From, m.To, m.Error)
			continue
		}
		moved++
		bytes += m.Bytes
	}
	verdict := "balanced"
	if !r.Balanced {
		verdict = "not balanced: " + r.Stopped
	}
	fmt.Fprintf(p.w, "\n%d shards moved (%s), %d moves failed; %s\n", moved, byteCount(bytes), failedMoves, verdict)
	return nil
}
