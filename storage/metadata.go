package storage

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

	ChecksumSHA256      string `json:"checksum_sha256"`
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
}
