package storage

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// fullMetadata has every field set, as an ffmpeg encode with quality
// measured leaves them.
func fullMetadata() Metadata {
	return Metadata{
		VideoID: "example_video.mp4", ChunkIndex: 2147483647, OriginalSize: 1048576, EncodedSize: 524288,
		CompressionRatio: 0.5, WorkerID: "localhost:50061", ShardLocation: "/srv/video_shards/example_video.mp4/chunk_2147483647.shard",
		Timestamp: "2023-04-25T14:30:45.123456Z", ChecksumSHA256: "ab", ChecksumCRC32C: "0a1b2c3d", InputChecksumSHA256: "cd", InputPrefixSHA256: "ef",
		Encoder: "ffmpeg", VideoCodec: "libx264", AudioCodec: "aac", Container: "mp4",
		EncoderSettings: map[string]string{"crf": "23", "preset": "medium", "": "empty key"},
		DurationSeconds: 4.004, FrameCount: 96, Width: 1280, Height: 720, EncodeTimeSeconds: 1e-7,
		Quality:        &Quality{Frames: 96, PSNRMin: 38.25, PSNRMean: math.Inf(1), SSIMMin: 0.97, SSIMMean: 1},
		ReplicatedFrom: "10.0.0.2:50061",
	}
}

// What the store writes takes the fast path, for every field: a field
// added to Metadata without a case in decodeMetadataFast fails here (and
// would only make Open slower, never wrong).
func TestDecodeMetadataFast_WhatTheStoreWrites(t *testing.T) {
	full := fullMetadata()
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fullMetadata leaves %s unset: set it, and decode it in decodeMetadataFast", v.Type().Field(i).Name)
		}
	}
	noQuality := full
	noQuality.Quality = nil
	finite := full
	finite.Quality = &Quality{Frames: 1, PSNRMin: 20, PSNRMean: 30.5, SSIMMin: 0.5, SSIMMean: 0.75}
	for name, m := range map[string]Metadata{"full": full, "no quality": noQuality, "finite PSNR": finite, "zero": {}} {
		for _, indent := range []bool{true, false} {
			var data []byte
			var err error
			if indent {
				data, err = json.MarshalIndent(m, "", "  ")
			} else {
				data, err = json.Marshal(m)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := decodeMetadataFast(data)
			if !ok {
				t.Fatalf("%s (indent %v): not taken by the fast path:\n%s", name, indent, data)
			}
			var want Metadata
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s (indent %v): fast path %+v, json %+v", name, indent, got, want)
			}
		}
	}
}

// FuzzDecodeMetadata: whatever the fast path takes, it decodes exactly as
// json.Unmarshal does, and decodeMetadata answers as json.Unmarshal does
// for everything.
func FuzzDecodeMetadata(f *testing.F) {
	full, _ := json.MarshalIndent(fullMetadata(), "", "  ")
	f.Add(full)
	for _, s := range []string{
		`{}`, ` {} `, `{"video_id":"a","chunk_index":1}`, `{"video_id":"a\u0062"}`, `{"video_id":"caf\u00e9"}`,
		`{"video_id":"caf` + "\xc3\xa9" + `"}`, `{"video_id":"bad` + "\xff" + `"}`, `{"video_id":"tab` + "\t" + `"}`,
		`{"Video_ID":"a"}`, `{"video_id":"a","video_id":"b"}`, `{"VIDEO_ID":"a","video_id":"b"}`, `{"video_id":null}`,
		`{"video_id":1}`, `{"chunk_index":"1"}`, `{"chunk_index":1.0}`, `{"chunk_index":1e2}`, `{"chunk_index":-0}`,
		`{"chunk_index":01}`, `{"chunk_index":9223372036854775808}`, `{"chunk_index":-9223372036854775808}`,
		`{"encoded_size":-1}`, `{"compression_ratio":1e400}`, `{"compression_ratio":-0.0}`, `{"compression_ratio":.5}`,
		`{"compression_ratio":5.}`, `{"compression_ratio":1E+2}`, `{"compression_ratio":-}`, `{"width":2147483648}`,
		`{"encoder_settings":{}}`, `{"encoder_settings":null}`, `{"encoder_settings":{"a":"1","a":"2"}}`,
		`{"encoder_settings":{"a":1}}`, `{"encoder_settings":{"a":"1"},"encoder_settings":{"b":"2"}}`,
		`{"quality":null}`, `{"quality":{}}`, `{"quality":{"psnr_min":null,"psnr_mean":40}}`,
		`{"quality":{"ssim_min":null}}`, `{"quality":{"frames":1,"frames":2}}`, `{"quality":{"x":1}}`,
		`{"quality":{"Frames":3}}`, `{"quality":[]}`, `{"unknown":1}`, `{"video_id":"a",}`, `{"video_id":"a"}x`,
		`{"video_id":"a"}{}`, "\ufeff{}", `[]`, `null`, ``, `{"video_id":"a"`, `{"video_id" "a"}`,
		`{"crc32c":"0a1b2c3d"}`, `{"crc32c":"a","crc32c":"b"}`, `{"crc32c":null}`, `{"crc32c":12345678}`,
		`{"checksum_sha256":"ab","crc32c":""}`, `{"CRC32C":"0a1b2c3d"}`,
		`{"replicated_from":"127.0.0.1:50061"}`, `{"replicated_from":"a","replicated_from":"b"}`, `{"replicated_from":null}`,
		`{"duration_seconds":nul}`, `{"quality":{"psnr_min":nullx}}`, `{"a":"\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want Metadata
		wantErr := json.Unmarshal(data, &want)
		unNaN(want)
		if got, ok := decodeMetadataFast(data); ok {
			unNaN(got)
			if wantErr != nil {
				t.Fatalf("fast path took %q, which json refuses: %v", data, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: fast path %+v, json %+v", data, got, want)
			}
		}
		got, err := decodeMetadata(data)
		unNaN(got)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("%q: decodeMetadata error %v, json %v", data, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeMetadata %+v, json %+v", data, got, want)
		}
	})
}

// unNaN makes m's SSIM not measured (NaN, which equals nothing) -1, so
// reflect.DeepEqual can compare it.
func unNaN(m Metadata) {
	if q := m.Quality; q != nil {
		for _, v := range []*float64{&q.SSIMMin, &q.SSIMMean} {
			if math.IsNaN(*v) {
				*v = -1
			}
		}
	}
}
