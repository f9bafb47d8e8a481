package grpcapi

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/videoshard/videoshard/internal/quality"
	pb "github.com/videoshard/videoshard/proto"
)

// An encode's measured quality is committed with the chunk, kept in its
// metadata file (null for an infinite PSNR), and returned by every RPC
// that returns the chunk's metadata: ProcessChunk and UploadChunk (also
// when answered from the store), GetVideoMetadata, GetShard, DownloadShard.
func TestQualityReachesTheWire(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name     string
		quality  *quality.Stats
		want     *quality.Stats // nil: quality_frames 0 and the rest 0
		fileJSON string         // the metadata file's "quality"; "" for none
	}{
		{name: "not measured"},
		{name: "nothing measured", quality: &quality.Stats{}},
		{
			name:     "lossy",
			quality:  &quality.Stats{Frames: 90, MinPSNR: 36.5, MeanPSNR: 40.25, MinSSIM: 0.95, MeanSSIM: 0.975},
			want:     &quality.Stats{Frames: 90, MinPSNR: 36.5, MeanPSNR: 40.25, MinSSIM: 0.95, MeanSSIM: 0.975},
			fileJSON: `{"frames":90,"psnr_min":36.5,"psnr_mean":40.25,"ssim_min":0.95,"ssim_mean":0.975}`,
		},
		{
			name:     "identical",
			quality:  &quality.Stats{Frames: 30, MinPSNR: inf, MeanPSNR: inf, MinSSIM: 1, MeanSSIM: 1},
			want:     &quality.Stats{Frames: 30, MinPSNR: inf, MeanPSNR: inf, MinSSIM: 1, MeanSSIM: 1},
			fileJSON: `{"frames":30,"psnr_min":null,"psnr_mean":null,"ssim_min":1,"ssim_mean":1}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, &fakeEncoder{quality: tt.quality}, Config{})
			ctx := context.Background()
			data := []byte("chunk bytes, copied by the fake encoder")
			got := map[string]*pb.ChunkMetadata{}
			for i, send := range []struct {
				name string
				fn   func() (*pb.ProcessChunkResponse, error)
			}{
				{"ProcessChunk", func() (*pb.ProcessChunkResponse, error) {
					return h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: data})
				}},
				{"ProcessChunk retried", func() (*pb.ProcessChunkResponse, error) {
					return h.client.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: "v", ChunkIndex: 0, ChunkData: data})
				}},
				{"UploadChunk", func() (*pb.ProcessChunkResponse, error) {
					return uploadChunk(t, h, &pb.UploadHeader{VideoId: "v", ChunkIndex: 1, TotalSize: int64(len(data))}, data, 8)
				}},
			} {
				resp, err := send.fn()
				if err != nil {
					t.Fatalf("%s: %v", send.name, err)
				}
				if stored := i == 1; stored != (resp.GetMessage() == "chunk 0 of v already stored") {
					t.Fatalf("%s: message %q", send.name, resp.GetMessage())
				}
				got[send.name] = resp.GetMetadata()
			}
			vm, err := h.client.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: "v"})
			if err != nil || len(vm.GetChunksMetadata()) != 2 {
				t.Fatalf("GetVideoMetadata = %v, %v", vm, err)
			}
			got["GetVideoMetadata 0"], got["GetVideoMetadata 1"] = vm.GetChunksMetadata()[0], vm.GetChunksMetadata()[1]
			one := int32(1)
			shard, err := h.client.GetShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: &one})
			if err != nil {
				t.Fatalf("GetShard: %v", err)
			}
			got["GetShard"] = shard.GetMetadata()
			stream, err := h.client.DownloadShard(ctx, &pb.GetShardRequest{VideoId: "v", ChunkIndex: &one})
			if err != nil {
				t.Fatal(err)
			}
			first, err := stream.Recv()
			if err != nil {
				t.Fatalf("DownloadShard: %v", err)
			}
			got["DownloadShard"] = first.GetMetadata()

			for name, m := range got {
				want := tt.want
				if want == nil {
					want = &quality.Stats{}
				}
				if m.GetQualityFrames() != int64(want.Frames) || m.GetPsnrMin() != want.MinPSNR || m.GetPsnrMean() != want.MeanPSNR ||
					m.GetSsimMin() != want.MinSSIM || m.GetSsimMean() != want.MeanSSIM {
					t.Errorf("%s: quality_frames %d psnr_min %v psnr_mean %v ssim_min %v ssim_mean %v, want %+v", name,
						m.GetQualityFrames(), m.GetPsnrMin(), m.GetPsnrMean(), m.GetSsimMin(), m.GetSsimMean(), *want)
				}
			}

			for _, chunk := range []string{"0", "1"} {
				path := filepath.Join(h.store.Root(), "metadata", "v_chunk_"+chunk+"_metadata.json")
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var fields map[string]json.RawMessage
				if err := json.Unmarshal(raw, &fields); err != nil {
					t.Fatalf("%s is not JSON: %v", path, err)
				}
				q, ok := fields["quality"]
				switch {
				case tt.fileJSON == "" && ok:
					t.Errorf("%s: quality %s, want none", path, q)
				case tt.fileJSON != "" && compactJSON(t, q) != tt.fileJSON:
					t.Errorf("%s: quality %s, want %s", path, q, tt.fileJSON)
				}
			}
		})
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	// Marshal sorts the keys; put them back in the file's order.
	order := []string{"frames", "psnr_min", "psnr_mean", "ssim_min", "ssim_mean"}
	out := "{"
	for i, k := range order {
		if i > 0 {
			out += ","
		}
		b, _ := json.Marshal(v[k])
		out += `"` + k + `":` + string(b)
	}
	return out + "}"
}
