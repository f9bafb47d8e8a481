package encode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
)

// ProbeInfo is what ffprobe reports about a media file.
type ProbeInfo struct {
	// FormatName is the demuxer's name list, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
	FormatName string
	// Duration is in seconds; 0 when ffprobe does not know it.
	Duration float64
	// Size is the file size in bytes.
	Size    int64
	Streams []StreamInfo
}

// StreamInfo describes one stream of a probed file.
type StreamInfo struct {
	Index     int
	CodecType string // "video", "audio", "subtitle", "data", ...
	CodecName string // e.g. "h264", "aac"; "" when unknown
	// Width and Height are set for video streams.
	Width, Height int
	// Frames is the container's frame count, or, when the container does
	// not record one (matroska, webm), the number of packets read.
	Frames int64
	// Packets is the number of packets read (0 when not counted).
	Packets int64
	// AvgFrameRate is a ratio such as "30/1" or "30000/1001"; RFrameRate
	// is ffprobe's r_frame_rate, the lowest rate all timestamps fit. "0/0"
	// or "" when unknown.
	AvgFrameRate, RFrameRate string
}

// FirstStream returns the first stream of the given codec type.
func (p ProbeInfo) FirstStream(codecType string) (StreamInfo, bool) {
	for _, s := range p.Streams {
		if s.CodecType == codecType {
			return s, true
		}
	}
	return StreamInfo{}, false
}

// Probe runs ffprobe (ffprobeBinary, or "ffprobe" when empty) on the local
// file at path and returns its format and streams. It reads every packet to
// count frames, but decodes nothing. When ctx ends, ffprobe is killed and the
// error wraps ctx.Err(). A file ffprobe cannot open gives an error carrying
// ffprobe's reason.
func Probe(ctx context.Context, ffprobeBinary, path string) (ProbeInfo, error) {
	return probe(ctx, fftool.Tools{FFprobe: ffprobeBinary}.FFprobeBin(), path, nil)
}

// probe runs ffprobe on path with extra input options (such as whitelists).
// The path is passed as "file:path", so nothing in it selects a protocol.
func probe(ctx context.Context, bin, path string, inputOpts ffmpeg.KwArgs) (ProbeInfo, error) {
	kw := ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{inputOpts, {
		"v":             "error",
		"hide_banner":   "",
		"count_packets": "",
		"show_format":   "",
		"show_streams":  "",
		"of":            "json",
	}})
	args := append(ffmpeg.ConvertKwargsToCmdLineArgs(kw), "file:"+path)
	var r probeReport
	if err := fftool.ProbeJSON(ctx, bin, args, &r); err != nil {
		return ProbeInfo{}, err
	}
	return r.info()
}

// probeReport is the subset of ffprobe's JSON that is used. ffprobe prints
// most numbers as strings, and omits fields it does not know.
type probeReport struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		Size       string `json:"size"`
	} `json:"format"`
	Streams []struct {
		Index         int    `json:"index"`
		CodecType     string `json:"codec_type"`
		CodecName     string `json:"codec_name"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		NbFrames      string `json:"nb_frames"`
		NbReadPackets string `json:"nb_read_packets"`
		AvgFrameRate  string `json:"avg_frame_rate"`
		RFrameRate    string `json:"r_frame_rate"`
	} `json:"streams"`
}

// parseProbe reads a report where the caller ran ffprobe itself (it wants
// ffprobe's stderr whole).
func parseProbe(data []byte) (ProbeInfo, error) {
	var r probeReport
	if err := json.Unmarshal(data, &r); err != nil {
		return ProbeInfo{}, fmt.Errorf("parse ffprobe report: %w", err)
	}
	return r.info()
}

// info is what the report says, or why it says nothing.
func (r probeReport) info() (ProbeInfo, error) {
	if r.Format.FormatName == "" {
		return ProbeInfo{}, errors.New("parse ffprobe report: no format")
	}
	info := ProbeInfo{
		FormatName: r.Format.FormatName,
		Duration:   parseFloat(r.Format.Duration),
		Size:       parseInt(r.Format.Size),
	}
	for _, s := range r.Streams {
		packets := parseInt(s.NbReadPackets)
		frames := parseInt(s.NbFrames)
		if frames <= 0 {
			frames = packets
		}
		info.Streams = append(info.Streams, StreamInfo{
			Index:        s.Index,
			CodecType:    s.CodecType,
			CodecName:    s.CodecName,
			Width:        s.Width,
			Height:       s.Height,
			Frames:       frames,
			Packets:      packets,
			AvgFrameRate: s.AvgFrameRate,
			RFrameRate:   s.RFrameRate,
		})
	}
	return info, nil
}

// parseFloat and parseInt read ffprobe's numeric strings; absent or "N/A"
// gives 0.
func parseFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}

func parseInt(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
