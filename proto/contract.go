package replicationpb

import "errors"

// The wire contract beyond the messages: values a worker and a master must
// agree on that the .proto file can only describe in comments. Written by
// hand (make proto regenerates only *.pb.go) so that both sides import one
// definition instead of repeating the literals.

// Message sizes.
const (
	// DefaultMaxMessageBytes is a worker's gRPC message limit, both ways,
	// unless configured otherwise (grpc.max_message_bytes): 64 MiB, so
	// that a 48 MiB chunk still fits in one message, as old clients send
	// them, while the admitted messages' memory stays within a 2 GiB
	// machine. A worker reports it less MessageHeadroom as
	// HealthCheckResponse.max_unary_chunk_bytes.
	DefaultMaxMessageBytes = 64 << 20

	// LegacyMaxMessageBytes is the message limit of the original worker,
	// gRPC's own default receive limit, which it never raised: what a
	// client may assume of a worker that does not report
	// max_unary_chunk_bytes.
	LegacyMaxMessageBytes = 4 << 20

	// MessageHeadroom is what a message needs beyond the chunk or shard
	// bytes it carries (the other fields, tags and lengths): a chunk of up
	// to max message bytes minus MessageHeadroom fits in one message.
	MessageHeadroom = 64 << 10
)

// Encoder names, in HealthCheckResponse.encoder and ChunkMetadata.encoder.
const (
	EncoderFFmpeg    = "ffmpeg"
	EncoderSimulated = "simulated"
)

// Optional capabilities a worker lists in HealthCheckResponse.features.
const (
	// FeatureFrameTrim: the worker honours ProcessChunkRequest.trim and
	// UploadHeader.trim. A worker without it ignores a trim and encodes
	// the whole chunk, so trimmed chunks are never sent to it.
	FeatureFrameTrim = "frame_trim"

	// FeaturePictureHashes: the worker answers want_picture_hashes with
	// ProcessChunkResponse.picture_hashes.
	FeaturePictureHashes = "picture_hashes"
)

// CheckBearerToken reports why tok cannot travel as a bearer token in the
// authorization header ("Bearer <tok>"), without quoting it: it holds a
// space, a control or a non-ASCII character. A worker asks more of the
// tokens it accepts (a minimum length).
func CheckBearerToken(tok string) error {
	for _, c := range []byte(tok) {
		if c <= ' ' || c > '~' {
			return errors.New("holds a space, a control or a non-ASCII character")
		}
	}
	return nil
}
