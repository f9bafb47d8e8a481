package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/videoshard/videoshard/master"
)

// printSummary prints what a job did; with an error and nothing done, nothing.
func (a *app) printSummary(s master.Summary, jobErr error) error {
	if s.Chunks == 0 && jobErr != nil {
		return nil
	}
	p := printer{w: a.stdout, asJSON: a.v.GetBool("json")}
	if p.asJSON {
		return p.writeJSON(s)
	}
	workers := make([]string, 0, len(s.PerWorker))
	for w, n := range s.PerWorker {
		workers = append(workers, fmt.Sprintf("%s: %d", w, n))
	}
	slices.Sort(workers)
	fs := []field{
		{"video", s.VideoID},
		{"input", s.Input},
		{"output", s.Output},
		{"chunks", fmt.Sprintf("%d (%d already stored, %d encoded again after a lost or unreachable shard)", s.Chunks, s.Resumed, s.Reencoded)},
		{"per worker", strings.Join(workers, ", ")},
		{"encoders", strings.Join(s.Encoders, ", ")},
		{"input size", bytesIfSet(s.InputSize)},
		{"output size", bytesIfSet(s.OutputSize)},
		{"compression", ratioIfSet(s.CompressionRatio)},
		{"length", seconds(s.MediaSeconds)},
		{"wall time", s.Wall.Round(1e6).String()},
		{"speed", speedIfSet(s.Speed)},
		{"chunk map", s.StatePath},
	}
	for _, why := range s.EncodedAgain {
		fs = append(fs, field{"encoded again", why})
	}
	if sp := s.Split; sp != nil {
		text := fmt.Sprintf("%d chunks in %.2fs: %d stream-copied", sp.Chunks, sp.Seconds, sp.Copied)
		if sp.Live {
			text = fmt.Sprintf("%d chunks in %.2fs, cut and sent while the source was decoded: %d stream-copied", sp.Chunks, sp.Seconds, sp.Copied)
		}
		if sp.Reused {
			text = fmt.Sprintf("%d chunks, those the interrupted run cut (kept for its resume): %d stream-copied", sp.Chunks, sp.Copied)
		}
		if sp.Trimmed > 0 {
			text += fmt.Sprintf(" (%d trimmed: %d extra pictures decoded, %.1f%% of the source)", sp.Trimmed, sp.ExtraPictures, 100*sp.ExtraRatio)
		}
		if sp.Lossless > 0 {
			text += fmt.Sprintf(", %d lossless (%d after their copy failed the picture check)", sp.Lossless, sp.Fallback)
		}
		check := fmt.Sprintf("every chunk checked picture by picture (%.2fs of decoding)", sp.ProofSeconds)
		if sp.HeadProven > 0 {
			check = fmt.Sprintf("every chunk checked picture by picture: %d by their first pictures here (%.2fs of decoding) and the rest from their worker's decode",
				sp.HeadProven, sp.ProofSeconds)
			if sp.Reproven > 0 {
				check += fmt.Sprintf(", %d of them decoded whole here after all", sp.Reproven)
			}
			if sp.HeadOnly == sp.HeadProven {
				check = fmt.Sprintf("every chunk checked by its first pictures here (%.2fs of decoding): the simulated encoder decodes nothing to compare the rest with",
					sp.ProofSeconds)
			} else if sp.HeadOnly > 0 {
				check += fmt.Sprintf(", %d of them by their first pictures only (a simulated encoder decodes nothing)", sp.HeadOnly)
			}
		}
		fs = append(fs, field{"split", text + "; " + check})
	}
	if v := s.Verification; v != nil {
		verdict := "OK"
		if !v.OK {
			verdict = "FAILED: " + strings.Join(v.Problems, "; ")
		}
		duration := fmt.Sprintf("%.3fs output, %.3fs source (tolerance %.3fs)", v.OutputDuration, v.SourceDuration, v.FrameDuration)
		if v.Untimed {
			duration = fmt.Sprintf("%.3fs output, %.3fs source shown one frame apart (tolerance %.3fs): the source's pictures carry no usable timestamps",
				v.OutputDuration, v.SourceDuration, v.FrameDuration)
		}
		fs = append(fs,
			field{"verification", verdict},
			field{"frames", fmt.Sprintf("%d output, %d source", v.OutputFrames, v.SourceFrames)},
			field{"duration", duration},
			field{"frame times", frameTimes(v.MaxDrift)},
			field{"audio streams", fmt.Sprintf("%d output, %d source", v.AudioStreamsOutput, v.AudioStreamsSource)},
		)
		if q := s.Quality; q != nil {
			fs = append(fs, field{"pictures", fmt.Sprintf("PSNR %s mean, %s worst (chunk %d); %s; %d pictures compared (%s)",
				dB(q.MeanPSNR), dB(q.MinPSNR), s.WorstChunk, ssim(q.MeanSSIM, q.MinSSIM), q.Frames, s.VerifyMode)})
		} else if s.VerifyMode == master.VerifyOff {
			fs = append(fs, field{"pictures", "not compared (--verify=off)"})
		}
		for _, w := range s.Warnings {
			fs = append(fs, field{"warning", w})
		}
	} else if s.VerificationSkipReason != "" {
		fs = append(fs, field{"verification", "skipped: " + s.VerificationSkipReason})
	}
	if r := s.Replication; r != nil && r.Wanted > 1 {
		text := fmt.Sprintf("%d verified copies of every chunk", r.Wanted)
		if len(r.Short) > 0 {
			text = fmt.Sprintf("%d wanted, on %d healthy workers: chunks %v short (copies per chunk: %v)", r.Wanted, r.Workers, r.Short, r.Copies)
		}
		fs = append(fs, field{"replicas", text})
	}
	if c := s.Cleanup; c != nil {
		text := fmt.Sprintf("%d shards deleted (%s) from %d workers", c.Chunks, bytesIfSet(c.Bytes), c.Workers)
		if len(c.Failed) > 0 {
			text += "; left on: " + strings.Join(c.Failed, "; ")
		}
		fs = append(fs, field{"cleanup", text})
	}
	return p.fields(fs)
}

// frameTimes says how far the output's frame times are from the source's
// (Verification.MaxDrift): Matroska keeps milliseconds, MP4 and MOV the
// source's ticks when its pictures lie on a grid.
func frameTimes(drift float64) string {
	switch {
	case drift < 0:
		return "not compared (the frame counts differ or timestamps are missing)"
	case drift < 1e-6:
		return "the source's, exactly"
	}
	return fmt.Sprintf("within %.3f ms of the source's", 1000*drift)
}

// dB formats a PSNR; identical pictures measure +Inf.
func dB(x float64) string {
	if math.IsInf(x, 1) {
		return "inf dB (identical)"
	}
	return fmt.Sprintf("%.2f dB", x)
}

// ssim is a mean and worst SSIM (the worst left out when NaN) as the
// summary shows them.
func ssim(mean, worst float64) string {
	switch {
	case math.IsNaN(mean):
		return "SSIM not measured (pictures under its 8x8 window)"
	case math.IsNaN(worst):
		return fmt.Sprintf("SSIM %.4f", mean)
	}
	return fmt.Sprintf("SSIM %.4f mean, %.4f worst", mean, worst)
}

func speedIfSet(x float64) string {
	if x == 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx realtime", x)
}

func ratioIfSet(r float64) string {
	if r == 0 {
		return ""
	}
	return strconv.FormatFloat(r, 'f', 3, 64)
}

// printState prints a chunk map.
func (a *app) printState(s *master.JobState) error {
	p := printer{w: a.stdout, asJSON: a.v.GetBool("json")}
	if p.asJSON {
		return p.writeJSON(s)
	}
	done := len(s.Chunks) - len(s.Pending())
	if err := p.fields([]field{
		{"video", s.VideoID},
		{"source", s.Source},
		{"output", s.Output},
		{"chunks", fmt.Sprintf("%d of %d stored", done, len(s.Chunks))},
		{"updated", s.UpdatedAt.Format("2006-01-02 15:04:05Z07:00")},
	}); err != nil {
		return err
	}
	fmt.Fprintln(p.w)
	rows := make([][]string, 0, len(s.Chunks))
	for _, c := range s.Chunks {
		state := "pending"
		if c.Done {
			state = "stored"
		}
		form := "copy"
		switch {
		case c.Lossless:
			form = "lossless"
		case c.TrimStart > 0 || c.Decoded > c.Frames:
			form = fmt.Sprintf("copy, trim %d+%d of %d", c.TrimStart, c.Frames, c.Decoded)
		}
		quality := "-"
		switch {
		case c.QualityProblem != "":
			quality = c.QualityProblem
		case c.Quality != nil && c.Quality.Frames > 0:
			quality = fmt.Sprintf("%s / %s, %s (%s)", dB(c.Quality.MinPSNR), dB(c.Quality.MeanPSNR), ssim(c.Quality.MeanSSIM, math.NaN()), c.QualityMode)
		}
		rows = append(rows, []string{
			strconv.Itoa(c.Index), state, fmt.Sprintf("%d+%d", c.FirstFrame, c.Frames), form, seconds(c.Duration),
			dash(copiesOf(c)), dash(c.Encoder), bytesIfSet(c.EncodedSize), quality, dash(short(c.Checksum)), dash(c.Location),
		})
	}
	return p.table([]string{"CHUNK", "STATE", "PICTURES", "SENT AS", "DURATION", "WORKERS", "ENCODER", "SIZE", "PSNR MIN / MEAN", "SHA256", "LOCATION"}, rows)
}

// copiesOf lists the workers holding a chunk's copies.
func copiesOf(c master.ChunkState) string {
	var ws []string
	for _, r := range c.Copies() {
		ws = append(ws, r.Worker)
	}
	return strings.Join(ws, " ")
}
