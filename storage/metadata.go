package storage

import (
	"encoding/json"
	"math"
	"time"
)

// Metadata is one committed chunk, stored as
// <root>/metadata/<video_id>_chunk_<n>_metadata.json. The first eight fields
// are the original seed's, with the same JSON names and types; the rest are
// additions.
type Metadata struct {
	VideoID          string  `json:"video_id"`
	ChunkIndex       int     `json:"chunk_index"`
	OriginalSize     int64   `json:"original_size"`
	EncodedSize      int64   `json:"encoded_size"`
	CompressionRatio float64 `json:"compression_ratio"`
	WorkerID         string  `json:"worker_id"`
	// ShardLocation is the absolute path of the shard file.
	ShardLocation string `json:"shard_location"`
	// Timestamp is the commit time, ISO-8601 in UTC with microseconds.
	Timestamp string `json:"timestamp"`

	// ChecksumSHA256 is the shard's identity: what clients verify.
	ChecksumSHA256 string `json:"checksum_sha256"`
	// ChecksumCRC32C is the shard's CRC-32C (Castagnoli), 8 hex digits,
	// computed with the SHA-256 at commit. Reads verify it instead of the
	// SHA-256, as the CPU computes it an order of magnitude faster; chunks
	// committed before it was added have none (no "crc32c" key) and are
	// verified by their SHA-256.
	ChecksumCRC32C      string `json:"crc32c,omitempty"`
	InputChecksumSHA256 string `json:"input_checksum_sha256,omitempty"`
	// InputPrefixSHA256 is the SHA-256 of the input's first MiB (all of it
	// if shorter): a cheap first test of whether a new input is this one.
	InputPrefixSHA256 string            `json:"input_prefix_sha256,omitempty"`
	Encoder           string            `json:"encoder"`
	VideoCodec        string            `json:"video_codec,omitempty"`
	AudioCodec        string            `json:"audio_codec,omitempty"`
	Container         string            `json:"container,omitempty"`
	EncoderSettings   map[string]string `json:"encoder_settings,omitempty"`
	DurationSeconds   float64           `json:"duration_seconds"`
	FrameCount        int64             `json:"frame_count"`
	Width             int               `json:"width"`
	Height            int               `json:"height"`
	EncodeTimeSeconds float64           `json:"encode_time_seconds"`
	// Quality is the shard's picture quality measured against its input;
	// nil (no "quality" key) when it was not measured.
	Quality *Quality `json:"quality,omitempty"`
	// ReplicatedFrom is the worker (HOST:PORT) this copy was pulled from
	// (Pending.CommitCopy); empty (no key) for a chunk encoded here.
	ReplicatedFrom string `json:"replicated_from,omitempty"`
}

// Quality is a shard's picture quality, measured against the pictures of
// the input it was encoded from. In JSON:
//
//	"quality": {"frames": 50, "psnr_min": 38.2, "psnr_mean": 41.07, "ssim_min": 0.97, "ssim_mean": 0.98}
//
// with null for an infinite PSNR (JSON has no +Inf): identical pictures.
type Quality struct {
	// Frames is the number of pictures measured.
	Frames int64
	// PSNRMin and PSNRMean are in dB: the worst picture's, and the PSNR of
	// the mean MSE. +Inf when the pictures are identical.
	PSNRMin, PSNRMean float64
	// SSIMMin and SSIMMean are the worst and mean SSIM, 1 identical; NaN
	// when SSIM cannot measure the pictures (a plane smaller than its 8x8
	// window).
	SSIMMin, SSIMMean float64
}

type qualityJSON struct {
	Frames   int64    `json:"frames"`
	PSNRMin  *float64 `json:"psnr_min"`
	PSNRMean *float64 `json:"psnr_mean"`
	SSIMMin  *float64 `json:"ssim_min"`
	SSIMMean *float64 `json:"ssim_mean"`
}

// MarshalJSON writes the fields above, with null for an infinite PSNR
// and for an SSIM not measured (NaN).
// Other non-finite values are an error, as for any float64.
func (q Quality) MarshalJSON() ([]byte, error) {
	return json.Marshal(qualityJSON{
		Frames:   q.Frames,
		PSNRMin:  nilIfPosInf(q.PSNRMin),
		PSNRMean: nilIfPosInf(q.PSNRMean),
		SSIMMin:  nilIfNaN(q.SSIMMin),
		SSIMMean: nilIfNaN(q.SSIMMean),
	})
}

// UnmarshalJSON reads what MarshalJSON writes; a null or absent PSNR is
// +Inf, a null or absent SSIM NaN.
func (q *Quality) UnmarshalJSON(b []byte) error {
	var j qualityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*q = Quality{
		Frames:   j.Frames,
		PSNRMin:  posInfIfNil(j.PSNRMin),
		PSNRMean: posInfIfNil(j.PSNRMean),
		SSIMMin:  nanIfNil(j.SSIMMin),
		SSIMMean: nanIfNil(j.SSIMMean),
	}
	return nil
}

func nilIfNaN(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

func nanIfNil(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

func nilIfPosInf(v float64) *float64 {
	if math.IsInf(v, 1) {
		return nil
	}
	return &v
}

func posInfIfNil(v *float64) float64 {
	if v == nil {
		return math.Inf(1)
	}
	return *v
}

// ProcessedAt is when the chunk was committed (Timestamp), the zero time
// if Timestamp does not parse.
func (m Metadata) ProcessedAt() time.Time {
	at := processedAt(m)
	if at == 0 {
		return time.Time{}
	}
	return time.Unix(0, at).UTC()
}

// processedAt is ProcessedAt in Unix nanoseconds, 0 if unknown: what the
// indexes store, filter on and start the recency of a chunk with.
func processedAt(m Metadata) int64 {
	for _, layout := range []string{timestampLayout, time.RFC3339Nano, "2006-01-02T15:04:05.999999"} {
		if t, err := time.Parse(layout, m.Timestamp); err == nil {
			if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, math.MaxInt64)) {
				return 0 // no UnixNano: years before 1970 or after 2262
			}
			return t.UnixNano()
		}
	}
	return 0
}
