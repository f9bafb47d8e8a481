package storage

import (
	"encoding/json"
	"math"
	"strconv"
)

// decodeMetadata parses a metadata file as json.Unmarshal into a Metadata
// does. Open parses every metadata file, and at 100,000 chunks
// encoding/json was a third of a worker's start-up, so the files the store
// writes (plain ASCII strings, known keys, each once) take a fast path;
// anything else (escapes, other keys, null, duplicates, bad syntax) goes to
// json.Unmarshal, so the result, errors included, is json.Unmarshal's
// either way (FuzzDecodeMetadata holds the fast path to that).
func decodeMetadata(data []byte) (Metadata, error) {
	if m, ok := decodeMetadataFast(data); ok {
		return m, nil
	}
	var m Metadata
	err := json.Unmarshal(data, &m)
	return m, err
}

// decodeMetadataFast parses data if it is in the subset of JSON described
// at decodeMetadata; ok is false otherwise.
func decodeMetadataFast(data []byte) (m Metadata, ok bool) {
	p := jsonCursor{b: data}
	var seen uint32
	ok = p.object(func(key string) bool {
		var bit uint32 // one per key, to refuse duplicates (json would take the last)
		switch key {
		case "video_id":
			bit = 1 << 0
			m.VideoID, ok = p.str()
		case "chunk_index":
			bit = 1 << 1
			m.ChunkIndex, ok = p.int()
		case "original_size":
			bit = 1 << 2
			m.OriginalSize, ok = p.int64()
		case "encoded_size":
			bit = 1 << 3
			m.EncodedSize, ok = p.int64()
		case "compression_ratio":
			bit = 1 << 4
			m.CompressionRatio, ok = p.float()
		case "worker_id":
			bit = 1 << 5
			m.WorkerID, ok = p.str()
		case "shard_location":
			bit = 1 << 6
			m.ShardLocation, ok = p.str()
		case "timestamp":
			bit = 1 << 7
			m.Timestamp, ok = p.str()
		case "checksum_sha256":
			bit = 1 << 8
			m.ChecksumSHA256, ok = p.str()
		case "input_checksum_sha256":
			bit = 1 << 9
			m.InputChecksumSHA256, ok = p.str()
		case "input_prefix_sha256":
			bit = 1 << 10
			m.InputPrefixSHA256, ok = p.str()
		case "encoder":
			bit = 1 << 11
			m.Encoder, ok = p.str()
		case "video_codec":
			bit = 1 << 12
			m.VideoCodec, ok = p.str()
		case "audio_codec":
			bit = 1 << 13
			m.AudioCodec, ok = p.str()
		case "container":
			bit = 1 << 14
			m.Container, ok = p.str()
		case "encoder_settings":
			bit = 1 << 15
			m.EncoderSettings = map[string]string{}
			ok = p.object(func(k string) bool {
				if _, dup := m.EncoderSettings[k]; dup {
					return false
				}
				v, ok := p.str()
				m.EncoderSettings[k] = v
				return ok
			})
		case "duration_seconds":
			bit = 1 << 16
			m.DurationSeconds, ok = p.float()
		case "frame_count":
			bit = 1 << 17
			m.FrameCount, ok = p.int64()
		case "width":
			bit = 1 << 18
			m.Width, ok = p.int()
		case "height":
			bit = 1 << 19
			m.Height, ok = p.int()
		case "encode_time_seconds":
			bit = 1 << 20
			m.EncodeTimeSeconds, ok = p.float()
		case "quality":
			bit = 1 << 21
			m.Quality, ok = p.quality()
		case "crc32c":
			bit = 1 << 22
			m.ChecksumCRC32C, ok = p.str()
		case "replicated_from":
			bit = 1 << 23
			m.ReplicatedFrom, ok = p.str()
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
	if !ok || !p.end() {
		return Metadata{}, false
	}
	return m, true
}

// quality parses what Quality.MarshalJSON writes: numbers, and null for an
// infinite PSNR or an SSIM not measured (absent is too, as for
// Quality.UnmarshalJSON).
func (p *jsonCursor) quality() (*Quality, bool) {
	inf, nan := math.Inf(1), math.NaN()
	q := Quality{PSNRMin: inf, PSNRMean: inf, SSIMMin: nan, SSIMMean: nan}
	var seen uint8
	ok := p.object(func(key string) bool {
		var bit uint8
		var ok bool
		switch key {
		case "frames":
			bit = 1
			q.Frames, ok = p.int64()
		case "psnr_min":
			bit = 2
			q.PSNRMin, ok = p.floatOrNull(inf)
		case "psnr_mean":
			bit = 4
			q.PSNRMean, ok = p.floatOrNull(inf)
		case "ssim_min":
			bit = 8
			q.SSIMMin, ok = p.floatOrNull(nan)
		case "ssim_mean":
			bit = 16
			q.SSIMMean, ok = p.floatOrNull(nan)
		}
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
	return &q, ok
}

// jsonCursor reads the subset of JSON decodeMetadataFast takes.
type jsonCursor struct {
	b []byte
	i int
}

func (p *jsonCursor) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c, after whitespace.
func (p *jsonCursor) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (p *jsonCursor) end() bool {
	p.space()
	return p.i == len(p.b)
}

// object reads {"key": value, ...}, calling member for each key with the
// cursor before its value; member reads the value.
func (p *jsonCursor) object(member func(key string) bool) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') || !member(key) {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes: its bytes are its
// value, as json.Unmarshal would have it.
func (p *jsonCursor) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
	}
	return "", false
}

// number reads a JSON number and returns its text.
func (p *jsonCursor) number() ([]byte, bool) {
	p.space()
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

func (p *jsonCursor) int64() (int64, bool) {
	s, ok := p.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s), 10, 64) // a fraction or exponent fails, as in json
	return n, err == nil
}

func (p *jsonCursor) int() (int, bool) {
	s, ok := p.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s), 10, strconv.IntSize)
	return int(n), err == nil
}

func (p *jsonCursor) float() (float64, bool) {
	s, ok := p.number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(s), 64) // out of range fails, as in json
	return f, err == nil
}

// floatOrNull reads a number, or null as ifNull.
func (p *jsonCursor) floatOrNull(ifNull float64) (float64, bool) {
	p.space()
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return ifNull, true
	}
	return p.float()
}
