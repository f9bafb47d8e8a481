package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	pb "github.com/videoshard/videoshard/proto"
)

// A worker with ffmpeg.measure_quality returns each shard's quality in
// ProcessChunk's metadata and keeps it in the chunk's metadata file, where
// GetVideoMetadata finds it after a restart; a worker without it measures
// nothing.
func TestE2EFFmpegMeasureQuality(t *testing.T) {
	clip := "h264_aac_640x360_30fps_4s.mp4" // 120 pictures, with audio
	src := readFile(t, testdataPath(clip))
	root := t.TempDir()
	crf0 := int32(0)
	tests := []struct {
		name       string
		yaml       string
		chunk      int32
		encoding   *pb.EncodingOptions
		trim       *pb.FrameTrim
		wantFrames int64 // 0: not measured
		identical  bool  // else lossy: PSNR 25..60 dB, SSIM 0.7..1
	}{
		{name: "lossy", yaml: "ffmpeg: {preset: ultrafast, measure_quality: true}\n", chunk: 0, wantFrames: 120},
		{name: "lossless trim", yaml: "ffmpeg: {preset: ultrafast, measure_quality: true, allow_overrides: {crf: \"0\"}}\n", chunk: 1,
			encoding: &pb.EncodingOptions{Crf: &crf0}, trim: &pb.FrameTrim{StartFrame: 17, FrameCount: 40}, wantFrames: 40, identical: true},
		{name: "off", yaml: "ffmpeg: {preset: ultrafast}\n", chunk: 2},
	}
	want := map[int32]*pb.ChunkMetadata{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startWorker(t, root, "encoder: ffmpeg\n"+tt.yaml)
			defer w.Stop()
			resp, err := w.Client.ProcessChunk(ctxT(t), &pb.ProcessChunkRequest{
				VideoId: "q", ChunkIndex: tt.chunk, ChunkData: src, Encoding: tt.encoding, Trim: tt.trim})
			if err != nil {
				t.Fatalf("ProcessChunk: %v", err)
			}
			m := resp.GetMetadata()
			want[tt.chunk] = m
			t.Logf("quality_frames %d psnr_min %v psnr_mean %v ssim_min %v ssim_mean %v",
				m.GetQualityFrames(), m.GetPsnrMin(), m.GetPsnrMean(), m.GetSsimMin(), m.GetSsimMean())
			if got := m.GetQualityFrames(); got != tt.wantFrames || tt.wantFrames > 0 && got != m.GetFrameCount() {
				t.Fatalf("quality_frames %d (frame_count %d), want %d", got, m.GetFrameCount(), tt.wantFrames)
			}
			var file struct {
				Quality *struct {
					Frames   int64    `json:"frames"`
					PSNRMin  *float64 `json:"psnr_min"`
					PSNRMean *float64 `json:"psnr_mean"`
					SSIMMin  float64  `json:"ssim_min"`
					SSIMMean float64  `json:"ssim_mean"`
				} `json:"quality"`
			}
			path := filepath.Join(root, "metadata", "q_chunk_"+itoa(tt.chunk)+"_metadata.json")
			if err := json.Unmarshal(readFile(t, path), &file); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			q := file.Quality
			switch {
			case tt.wantFrames == 0:
				if m.GetPsnrMin() != 0 || m.GetPsnrMean() != 0 || m.GetSsimMin() != 0 || m.GetSsimMean() != 0 || q != nil {
					t.Fatalf("not measured, yet metadata %v and file quality %+v", m, q)
				}
			case q == nil || q.Frames != tt.wantFrames || q.SSIMMin != m.GetSsimMin() || q.SSIMMean != m.GetSsimMean():
				t.Fatalf("%s: quality %+v, want the response's", path, q)
			case tt.identical:
				if !math.IsInf(m.GetPsnrMin(), 1) || !math.IsInf(m.GetPsnrMean(), 1) || m.GetSsimMin() != 1 || m.GetSsimMean() != 1 ||
					q.PSNRMin != nil || q.PSNRMean != nil {
					t.Fatalf("lossless: metadata %v, file psnr %v/%v; want +Inf on the wire and null in the file", m, q.PSNRMin, q.PSNRMean)
				}
			default:
				if m.GetPsnrMin() < 25 || m.GetPsnrMean() > 60 || m.GetPsnrMin() > m.GetPsnrMean() ||
					m.GetSsimMin() < 0.7 || m.GetSsimMean() >= 1 || m.GetSsimMin() > m.GetSsimMean() {
					t.Fatalf("lossy: metadata %v, want PSNR in 25..60 dB and SSIM in 0.7..1", m)
				}
				if q.PSNRMin == nil || *q.PSNRMin != m.GetPsnrMin() || q.PSNRMean == nil || *q.PSNRMean != m.GetPsnrMean() {
					t.Fatalf("%s: psnr %v/%v, want the response's %v/%v", path, q.PSNRMin, q.PSNRMean, m.GetPsnrMin(), m.GetPsnrMean())
				}
			}
		})
	}

	// A restarted worker (measuring or not) returns what was stored.
	w := startWorker(t, root, "encoder: ffmpeg\n")
	vm, err := w.Client.GetVideoMetadata(ctxT(t), &pb.GetVideoMetadataRequest{VideoId: "q"})
	if err != nil || len(vm.GetChunksMetadata()) != len(want) {
		t.Fatalf("GetVideoMetadata = %v, %v", vm, err)
	}
	for _, m := range vm.GetChunksMetadata() {
		first := want[m.GetChunkIndex()]
		if m.GetQualityFrames() != first.GetQualityFrames() || m.GetPsnrMin() != first.GetPsnrMin() || m.GetPsnrMean() != first.GetPsnrMean() ||
			m.GetSsimMin() != first.GetSsimMin() || m.GetSsimMean() != first.GetSsimMean() {
			t.Errorf("chunk %d after a restart: %v, want the quality of %v", m.GetChunkIndex(), m, first)
		}
	}
}
