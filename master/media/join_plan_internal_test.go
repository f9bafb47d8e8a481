package media

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPlanSideStreams(t *testing.T) {
	src := SourceInfo{
		Path: "/videos/source.mkv",
		Audio: []StreamInfo{
			{Index: 1, Type: "audio", Codec: "aac", Channels: 2},
			{Index: 2, Type: "audio", Codec: "vorbis", Channels: 1},
			{Index: 3, Type: "audio", Codec: "pcm_s16le", Channels: 6},
			{Index: 4, Type: "audio", Codec: "opus", Channels: 8},
			{Index: 13, Type: "audio", Codec: "pcm_bluray", Channels: 2}, // lossless, no tag in MOV
			{Index: 14, Type: "audio", Codec: "adpcm_swf", Channels: 2},  // lossy, no tag in Matroska
			{Index: 15, Type: "audio", Codec: "pcm_s64le", Channels: 2},  // MOV reads it back as pcm_s16le
		},
		Other: []StreamInfo{
			{Index: 5, Type: "subtitle", Codec: "subrip"},
			{Index: 6, Type: "subtitle", Codec: "hdmv_pgs_subtitle"},
			{Index: 7, Type: "subtitle", Codec: "webvtt"},
			{Index: 8, Type: "data", Codec: "bin_data"},
			{Index: 9, Type: "attachment", Codec: "ttf"},
			{Index: 10, Type: "video", Codec: "mjpeg"},
			{Index: 11, Type: "subtitle", Codec: "eia_608"},
			{Index: 12, Type: "subtitle", Codec: "mov_text"},
		},
	}
	// Each stream as "index:encoder[@bitrate]", "copy" for a stream copy.
	tests := []struct {
		container string
		streams   string
		dropped   []int
	}{
		{"matroska", "1:copy 2:copy 3:copy 4:copy 13:flac 14:aac@160k 15:flac 5:copy 6:copy 7:copy 12:srt", []int{8, 9, 10, 11}},
		{"mp4", "1:copy 2:aac@80k 3:alac 4:copy 13:alac 14:aac@160k 15:alac 5:mov_text 7:mov_text 12:mov_text", []int{6, 8, 9, 10, 11}},
		{"mov", "1:copy 2:aac@80k 3:copy 4:aac@512k 13:alac 14:aac@160k 15:alac 5:mov_text 7:mov_text 12:mov_text", []int{6, 8, 9, 10, 11}},
		{"webm", "1:libopus@128k 2:copy 3:libopus@384k 4:copy 13:libopus@128k 14:libopus@128k 15:libopus@128k 5:webvtt 7:copy 12:webvtt", []int{6, 8, 9, 10, 11}},
	}
	for _, tt := range tests {
		plan, err := planSideStreams(src, tt.container)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range plan.Streams {
			enc := s.Encoder
			if enc == "" {
				enc = "copy"
			}
			if s.Bitrate != "" {
				enc += "@" + s.Bitrate
			}
			got = append(got, fmt.Sprintf("%d:%s", s.SourceIndex, enc))
		}
		if strings.Join(got, " ") != tt.streams {
			t.Errorf("%s: streams %q, want %q", tt.container, strings.Join(got, " "), tt.streams)
		}
		var dropped []int
		for _, d := range plan.Dropped {
			var i int
			if _, err := fmt.Sscanf(d, "stream %d", &i); err != nil {
				t.Errorf("%s: Dropped %q", tt.container, d)
			}
			dropped = append(dropped, i)
		}
		if fmt.Sprint(dropped) != fmt.Sprint(tt.dropped) {
			t.Errorf("%s: dropped %v (%q), want %v", tt.container, dropped, plan.Dropped, tt.dropped)
		}
		if plan.Container != tt.container {
			t.Errorf("%s: Container %q", tt.container, plan.Container)
		}
	}
	if _, err := planSideStreams(src, "avi"); !errors.Is(err, ErrIncompatible) {
		t.Errorf("avi: err = %v, want ErrIncompatible", err)
	}
}

// TestPlanSideStreams_Programmes: of a broadcast's programmes, only the
// video's sound and subtitles are carried; the others are left out, named,
// and not held against the output.
func TestPlanSideStreams_Programmes(t *testing.T) {
	src := SourceInfo{
		Video: VideoStream{StreamInfo: StreamInfo{Index: 0, Type: "video", Codec: "h264", Program: 1}},
		Audio: []StreamInfo{
			{Index: 1, Type: "audio", Codec: "mp2", Program: 1},
			{Index: 3, Type: "audio", Codec: "mp2", Program: 2},
			{Index: 5, Type: "audio", Codec: "aac"}, // in no programme
		},
		Other: []StreamInfo{
			{Index: 2, Type: "video", Codec: "h264", Program: 2},
			{Index: 4, Type: "subtitle", Codec: "dvb_teletext", Program: 2},
		},
	}
	plan, err := planSideStreams(src, "matroska")
	if err != nil {
		t.Fatal(err)
	}
	var carried []int
	for _, s := range plan.Streams {
		carried = append(carried, s.SourceIndex)
	}
	if fmt.Sprint(carried) != "[1 5]" || fmt.Sprint(plan.Left) != "[3 4]" {
		t.Errorf("carried %v, left %v; want [1 5], [3 4]", carried, plan.Left)
	}
	if got := strings.Join(plan.Dropped, "; "); !strings.Contains(got, "stream 3 (audio mp2): it belongs to programme 2, the video to programme 1") {
		t.Errorf("dropped: %s", got)
	}
}

// TestSideStreams_CheckCodecs: each planned stream must be in the output,
// in its place, in its own codec or its encoder's.
func TestSideStreams_CheckCodecs(t *testing.T) {
	plan := SideStreams{Streams: []SideStream{
		{SourceIndex: 1, Type: "audio", Codec: "pcm_s16le"},
		{SourceIndex: 2, Type: "audio", Codec: "pcm_bluray", Encoder: "alac"},
		{SourceIndex: 3, Type: "subtitle", Codec: "subrip", Encoder: "mov_text"},
	}}
	track := func(index int, codec string) TrackPresentation {
		return TrackPresentation{Index: index, Codec: codec}
	}
	tests := []struct {
		name   string
		tracks []TrackPresentation
		want   string // the problems, joined by "; "
	}{
		{"as planned", []TrackPresentation{track(1, "pcm_s16le"), track(2, "alac"), track(3, "mov_text")}, ""},
		{"read back as another codec", []TrackPresentation{track(1, "pcm_s16be"), track(2, "alac"), track(3, "mov_text")},
			"the output's stream 1 (the source's audio stream 1, pcm_s16le) is pcm_s16be, not pcm_s16le"},
		{"under a tag nothing decodes", []TrackPresentation{track(1, "pcm_s16le"), track(2, ""), track(3, "mov_text")},
			"the output's stream 2 (the source's audio stream 2, pcm_bluray) is a codec ffmpeg does not know, not alac"},
		{"missing", []TrackPresentation{track(1, "pcm_s16le"), track(2, "alac")},
			"the output's stream 3 (the source's subtitle stream 3, subrip) is nothing, not mov_text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(plan.CheckCodecs(Presentation{Tracks: tt.tracks}), "; ")
			if got != tt.want {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
}
