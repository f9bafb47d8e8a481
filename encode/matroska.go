package encode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// readMatroska reads from a Matroska or WebM file what ffprobe (probe)
// reports of it that an encode's Result takes: the format's duration and,
// per track in order, its type, codec name, picture size and packet count
// (Frames, as ffprobe counts for a container without frame counts). It
// reads element headers only, skipping the media, so that an encode into
// Matroska needs no ffprobe process (about 0.1 s, most of it ffprobe's
// start-up) after ffmpeg.
//
// It knows the files ffmpeg's Matroska muxer writes to a seekable output:
// every element sized, a Duration in the segment's Info. Anything else (an
// unknown-size element, a codec not in the tables below, content encoding,
// a video track without blocks or size) is an error, and the caller asks
// ffprobe instead; it never guesses. Frame rates are not read: the result
// is not for PixelLimits.
func readMatroska(path string) (ProbeInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return ProbeInfo{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ProbeInfo{}, err
	}
	m := &mkvReader{r: f, size: fi.Size()}
	info, err := m.read()
	if err != nil {
		return ProbeInfo{}, fmt.Errorf("read matroska: %w", err)
	}
	return info, nil
}

// Matroska element IDs (marker bits included), from the specification.
const (
	mkvEBML           = 0x1A45DFA3
	mkvDocType        = 0x4282
	mkvSegment        = 0x18538067
	mkvInfo           = 0x1549A966
	mkvTimestampScale = 0x2AD7B1
	mkvDuration       = 0x4489
	mkvTracks         = 0x1654AE6B
	mkvTrackEntry     = 0xAE
	mkvTrackNumber    = 0xD7
	mkvTrackType      = 0x83
	mkvCodecID        = 0x86
	mkvVideo          = 0xE0
	mkvPixelWidth     = 0xB0
	mkvPixelHeight    = 0xBA
	mkvContentEncs    = 0x6D80
	mkvCluster        = 0x1F43B675
	mkvSimpleBlock    = 0xA3
	mkvBlockGroup     = 0xA0
	mkvBlock          = 0xA1
)

// Matroska track types.
const (
	mkvTrackVideo = 1
	mkvTrackAudio = 2
)

// mkvVideoCodecs and mkvAudioCodecs name the codecs of Matroska codec IDs
// as ffprobe does (ffmpeg's ff_mkv_codec_tags): those the allowlisted
// encoders write and the audio a chunk commonly carries (audio_codec copy).
var (
	mkvVideoCodecs = map[string]string{
		"V_MPEG4/ISO/AVC":  "h264",
		"V_MPEGH/ISO/HEVC": "hevc",
		"V_VP8":            "vp8",
		"V_VP9":            "vp9",
		"V_AV1":            "av1",
		"V_MPEG4/ISO/ASP":  "mpeg4",
		"V_MPEG4/ISO/SP":   "mpeg4",
		"V_MPEG4/ISO/AP":   "mpeg4",
	}
	mkvAudioCodecs = map[string]string{
		"A_AAC":     "aac",
		"A_OPUS":    "opus",
		"A_VORBIS":  "vorbis",
		"A_FLAC":    "flac",
		"A_AC3":     "ac3",
		"A_EAC3":    "eac3",
		"A_MPEG/L3": "mp3",
		"A_MPEG/L2": "mp2",
		"A_DTS":     "dts",
		"A_TRUEHD":  "truehd",
		"A_ALAC":    "alac",
	}
)

// mkvTrack is one TrackEntry and the blocks counted for it.
type mkvTrack struct {
	number        uint64
	kind          uint64
	codecID       string
	width, height int
	encoded       bool // has ContentEncodings: packets are not the blocks
	packets       int64
}

// mkvReader reads element headers at offsets of r, through a window of
// the file so that the many small reads of a cluster's block headers are
// few system calls.
type mkvReader struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	at   int64 // file offset of buf[0]
}

// mkvWindow is the read-ahead of mkvReader: a cluster's block headers are
// about a block (a few KiB to a few hundred) apart.
const mkvWindow = 256 << 10

// bytes returns n bytes at off, or an error if the file ends first.
func (m *mkvReader) bytes(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > m.size {
		return nil, io.ErrUnexpectedEOF
	}
	if off < m.at || off+int64(n) > m.at+int64(len(m.buf)) {
		if cap(m.buf) < max(n, mkvWindow) {
			m.buf = make([]byte, max(n, mkvWindow))
		}
		m.buf = m.buf[:min(int64(cap(m.buf)), m.size-off)]
		if _, err := m.r.ReadAt(m.buf, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		m.at = off
	}
	i := off - m.at
	return m.buf[i : i+int64(n)], nil
}

// header reads the element header at off: its ID, the offset of its data
// and the data's size. An unknown size is an error.
func (m *mkvReader) header(off, end int64) (id uint64, data, size int64, err error) {
	b, err := m.bytes(off, int(min(12, end-off)))
	if err != nil {
		return 0, 0, 0, err
	}
	if len(b) == 0 {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	idLen := vintLen(b[0])
	if idLen == 0 || idLen > 4 || idLen > len(b) {
		return 0, 0, 0, fmt.Errorf("bad element id at %d", off)
	}
	for _, c := range b[:idLen] {
		id = id<<8 | uint64(c)
	}
	rest := b[idLen:]
	if len(rest) == 0 {
		return 0, 0, 0, fmt.Errorf("element at %d: no size", off)
	}
	sizeLen := vintLen(rest[0])
	if sizeLen == 0 || sizeLen > len(rest) {
		return 0, 0, 0, fmt.Errorf("element %x at %d: bad size", id, off)
	}
	v, unknown := vintValue(rest[:sizeLen])
	if unknown {
		return 0, 0, 0, fmt.Errorf("element %x at %d: unknown size", id, off)
	}
	data = off + int64(idLen+sizeLen)
	if v > uint64(end-data) {
		return 0, 0, 0, fmt.Errorf("element %x at %d: %d bytes overrun its parent", id, off, v)
	}
	return id, data, int64(v), nil
}

// vintLen is the length of the EBML variable-size integer whose first byte
// is b, 0 if invalid.
func vintLen(b byte) int {
	for n := 1; n <= 8; n++ {
		if b&(0x80>>(n-1)) != 0 {
			return n
		}
	}
	return 0
}

// vintValue decodes a variable-size integer without its marker bit;
// unknown is set for the reserved all-ones value (an unknown size).
func vintValue(b []byte) (v uint64, unknown bool) {
	v = uint64(b[0]) & (0xFF >> len(b))
	allOnes := v == 0xFF>>len(b)
	for _, c := range b[1:] {
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xFF
	}
	return v, allOnes
}

// children calls fn for each child element of the element whose data is
// [off, end).
func (m *mkvReader) children(off, end int64, fn func(id uint64, data, size int64) error) error {
	for off < end {
		id, data, size, err := m.header(off, end)
		if err != nil {
			return err
		}
		if err := fn(id, data, size); err != nil {
			return err
		}
		off = data + size
	}
	return nil
}

func (m *mkvReader) uint(data, size int64) (uint64, error) {
	if size < 1 || size > 8 {
		return 0, fmt.Errorf("unsigned integer of %d bytes", size)
	}
	b, err := m.bytes(data, int(size))
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (m *mkvReader) float(data, size int64) (float64, error) {
	b, err := m.bytes(data, int(size))
	if err != nil {
		return 0, err
	}
	switch size {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("float of %d bytes", size)
}

func (m *mkvReader) string(data, size int64) (string, error) {
	if size > 1024 {
		return "", fmt.Errorf("string of %d bytes", size)
	}
	b, err := m.bytes(data, int(size))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\x00"), nil
}

func (m *mkvReader) read() (ProbeInfo, error) {
	id, data, size, err := m.header(0, m.size)
	if err != nil {
		return ProbeInfo{}, err
	}
	if id != mkvEBML {
		return ProbeInfo{}, errors.New("not an EBML file")
	}
	var docType string
	err = m.children(data, data+size, func(id uint64, data, size int64) (err error) {
		if id == mkvDocType {
			docType, err = m.string(data, size)
		}
		return err
	})
	if err != nil {
		return ProbeInfo{}, err
	}
	if docType != "matroska" && docType != "webm" {
		return ProbeInfo{}, fmt.Errorf("doc type %q", docType)
	}
	id, segData, segSize, err := m.header(data+size, m.size)
	if err != nil {
		return ProbeInfo{}, err
	}
	if id != mkvSegment {
		return ProbeInfo{}, errors.New("no segment after the EBML header")
	}

	var (
		tracks    []*mkvTrack
		byNumber         = map[uint64]*mkvTrack{}
		scale     uint64 = 1000000 // the default TimestampScale, ns
		duration  float64
		hasInfo   bool
		hasTracks bool
	)
	err = m.children(segData, segData+segSize, func(id uint64, data, size int64) error {
		switch id {
		case mkvInfo:
			if hasInfo {
				return errors.New("two Info elements")
			}
			hasInfo = true
			return m.children(data, data+size, func(id uint64, data, size int64) (err error) {
				switch id {
				case mkvTimestampScale:
					scale, err = m.uint(data, size)
				case mkvDuration:
					duration, err = m.float(data, size)
				}
				return err
			})
		case mkvTracks:
			if hasTracks {
				return errors.New("two Tracks elements")
			}
			hasTracks = true
			return m.children(data, data+size, func(id uint64, data, size int64) error {
				if id != mkvTrackEntry {
					return nil
				}
				t, err := m.track(data, size)
				if err != nil {
					return err
				}
				if byNumber[t.number] != nil {
					return fmt.Errorf("two tracks numbered %d", t.number)
				}
				tracks = append(tracks, t)
				byNumber[t.number] = t
				return nil
			})
		case mkvCluster:
			if !hasTracks {
				return errors.New("a cluster before the tracks")
			}
			return m.children(data, data+size, func(id uint64, data, size int64) error {
				switch id {
				case mkvSimpleBlock:
					return m.block(data, size, byNumber)
				case mkvBlockGroup:
					return m.children(data, data+size, func(id uint64, data, size int64) error {
						if id == mkvBlock {
							return m.block(data, size, byNumber)
						}
						return nil
					})
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return ProbeInfo{}, err
	}
	if !(duration > 0) || scale == 0 {
		return ProbeInfo{}, errors.New("no duration in the segment's Info")
	}
	info := ProbeInfo{
		FormatName: "matroska,webm",
		Duration:   ffprobeDuration(duration, scale),
		Size:       m.size,
	}
	hasVideo := false
	for i, t := range tracks {
		s := StreamInfo{Index: i, Frames: t.packets, Packets: t.packets}
		switch t.kind {
		case mkvTrackVideo:
			s.CodecType, s.CodecName = "video", mkvVideoCodecs[t.codecID]
			s.Width, s.Height = t.width, t.height
			if s.CodecName == "" || t.encoded || t.packets == 0 || t.width <= 0 || t.height <= 0 {
				return ProbeInfo{}, fmt.Errorf("video track %d (%s) is not one ffprobe is spared for", t.number, t.codecID)
			}
			hasVideo = true
		case mkvTrackAudio:
			s.CodecType, s.CodecName = "audio", mkvAudioCodecs[t.codecID]
			if s.CodecName == "" || t.encoded {
				return ProbeInfo{}, fmt.Errorf("audio track %d (%s) is not one ffprobe is spared for", t.number, t.codecID)
			}
		default:
			// Subtitles and the like: what ffprobe says of them is not
			// used, but a count of them would be a guess.
			return ProbeInfo{}, fmt.Errorf("track %d of type %d", t.number, t.kind)
		}
		info.Streams = append(info.Streams, s)
	}
	if !hasVideo {
		return ProbeInfo{}, errors.New("no video track")
	}
	return info, nil
}

// track reads one TrackEntry.
func (m *mkvReader) track(data, size int64) (*mkvTrack, error) {
	t := &mkvTrack{}
	err := m.children(data, data+size, func(id uint64, data, size int64) (err error) {
		switch id {
		case mkvTrackNumber:
			t.number, err = m.uint(data, size)
		case mkvTrackType:
			t.kind, err = m.uint(data, size)
		case mkvCodecID:
			t.codecID, err = m.string(data, size)
		case mkvContentEncs:
			t.encoded = true
		case mkvVideo:
			return m.children(data, data+size, func(id uint64, data, size int64) error {
				var v uint64
				var err error
				switch id {
				case mkvPixelWidth:
					v, err = m.uint(data, size)
					t.width = int(min(v, math.MaxInt32))
				case mkvPixelHeight:
					v, err = m.uint(data, size)
					t.height = int(min(v, math.MaxInt32))
				}
				return err
			})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if t.number == 0 {
		return nil, errors.New("a track without a number")
	}
	return t, nil
}

// block counts the packets of one SimpleBlock or Block: one, or the frames
// of its lace.
func (m *mkvReader) block(data, size int64, tracks map[uint64]*mkvTrack) error {
	// The track number, a 16-bit timestamp, flags, and for a lace the
	// count of its frames less one.
	b, err := m.bytes(data, int(min(size, 12)))
	if err != nil {
		return err
	}
	n := 0
	if len(b) > 0 {
		n = vintLen(b[0])
	}
	if n == 0 || n+3 > len(b) {
		return fmt.Errorf("block at %d: too short or a bad track number", data)
	}
	number, _ := vintValue(b[:n])
	t := tracks[number]
	if t == nil {
		return fmt.Errorf("block at %d for unknown track %d", data, number)
	}
	flags := b[n+2]
	frames := int64(1)
	if flags&0x06 != 0 { // laced
		if n+4 > len(b) {
			return fmt.Errorf("block at %d: too short for its lace", data)
		}
		frames = int64(b[n+3]) + 1
	}
	t.packets += frames
	return nil
}

// ffprobeDuration is the duration ffprobe prints for a Matroska segment
// whose Info says duration ticks of scale ns: ffmpeg's demuxer truncates it
// to microseconds (matroska_read_header), ffprobe prints the seconds with
// six decimals, and probe parses that.
func ffprobeDuration(duration float64, scale uint64) float64 {
	us := int64(duration * float64(scale) * 1000 / 1000000)
	if us <= 0 {
		return 0 // ffprobe: N/A
	}
	return parseFloat(strconv.FormatFloat(float64(us)*(1/1e6), 'f', 6, 64))
}
