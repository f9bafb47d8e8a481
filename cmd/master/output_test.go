package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	pb "github.com/videoshard/videoshard/proto"
)

// process-chunk, get-shard and metadata show the quality a worker measured
// when it measured one, and JSON output stays JSON with an infinite PSNR.
func TestOutputShowsQuality(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name  string
		meta  *pb.ChunkMetadata
		field string // the "quality" line of process-chunk and get-shard; "" for none
		psnr  string // the metadata table's cells
		ssim  string
		// --json's quality_frames and psnr_min, as fmt prints them.
		jsonFrames  int
		jsonPSNRMin string
	}{
		{
			name:        "not measured",
			meta:        &pb.ChunkMetadata{VideoId: "v", FrameCount: 90},
			psnr:        "-",
			ssim:        "-",
			field:       "",
			jsonPSNRMin: "0",
		},
		{
			name: "lossy",
			meta: &pb.ChunkMetadata{VideoId: "v", FrameCount: 90,
				QualityFrames: 90, PsnrMin: 38.123, PsnrMean: 41.5, SsimMin: 0.95, SsimMean: 0.98765},
			field:       "PSNR 41.50 dB mean, 38.12 dB worst; SSIM 0.9877 mean, 0.9500 worst; 90 pictures compared",
			psnr:        "38.12/41.50 dB",
			ssim:        "0.9500/0.9877",
			jsonFrames:  90,
			jsonPSNRMin: "38.123",
		},
		{
			name: "identical",
			meta: &pb.ChunkMetadata{VideoId: "v", FrameCount: 40,
				QualityFrames: 40, PsnrMin: inf, PsnrMean: inf, SsimMin: 1, SsimMean: 1},
			field:       "PSNR inf dB (identical) mean, inf dB (identical) worst; SSIM 1.0000 mean, 1.0000 worst; 40 pictures compared",
			psnr:        "inf/inf dB",
			ssim:        "1.0000/1.0000",
			jsonFrames:  40,
			jsonPSNRMin: "Infinity",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outputs := map[string]func(p printer) error{
				"process-chunk": func(p printer) error {
					return p.processed(&pb.ProcessChunkResponse{Success: true, Metadata: tt.meta})
				},
				"get-shard": func(p printer) error { return p.shard("out.mkv", 10, tt.meta) },
			}
			for name, out := range outputs {
				var buf bytes.Buffer
				if err := out(printer{w: &buf}); err != nil {
					t.Fatal(err)
				}
				line := ""
				for l := range strings.Lines(buf.String()) {
					if v, ok := strings.CutPrefix(l, "quality:"); ok {
						line = strings.TrimSpace(v)
					}
				}
				if line != tt.field {
					t.Errorf("%s: quality %q, want %q in:\n%s", name, line, tt.field, buf.String())
				}
			}

			var buf bytes.Buffer
			resp := &pb.GetVideoMetadataResponse{Success: true, ChunksMetadata: []*pb.ChunkMetadata{tt.meta}}
			if err := (printer{w: &buf}).metadata(resp); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("metadata table:\n%s", buf.String())
			}
			col := strings.Index(lines[0], "PSNR MIN/MEAN")
			scol := strings.Index(lines[0], "SSIM MIN/MEAN")
			if col < 0 || scol < 0 {
				t.Fatalf("metadata header %q lacks the quality columns", lines[0])
			}
			if !strings.HasPrefix(lines[1][col:], tt.psnr) {
				t.Errorf("PSNR cell of %q, want %q", lines[1], tt.psnr)
			}
			if !strings.HasPrefix(lines[1][scol:], tt.ssim) {
				t.Errorf("SSIM cell of %q, want %q", lines[1], tt.ssim)
			}

			buf.Reset()
			if err := (printer{w: &buf, asJSON: true}).metadata(resp); err != nil {
				t.Fatal(err)
			}
			var parsed struct {
				Chunks []map[string]any `json:"chunks_metadata"`
			}
			if err := json.Unmarshal(buf.Bytes(), &parsed); err != nil || len(parsed.Chunks) != 1 {
				t.Fatalf("--json metadata is not JSON (%v):\n%s", err, buf.String())
			}
			// protojson writes an int64 as a string and +Inf as "Infinity".
			if got, want := fmt.Sprint(parsed.Chunks[0]["quality_frames"]), strconv.Itoa(tt.jsonFrames); got != want {
				t.Errorf("--json quality_frames = %s, want %s", got, want)
			}
			if got, want := fmt.Sprint(parsed.Chunks[0]["psnr_min"]), tt.jsonPSNRMin; got != want {
				t.Errorf("--json psnr_min = %s, want %s", got, want)
			}
		})
	}
}
