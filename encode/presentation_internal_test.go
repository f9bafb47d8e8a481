package encode

import (
	"reflect"
	"testing"

	ffmpeg "github.com/u2takey/ffmpeg-go"
)

func TestParseChunkPresentation(t *testing.T) {
	tests := []struct {
		name   string
		report string
		want   chunkPresentation
	}{
		{"no frames", `{"frames": []}`, chunkPresentation{}},
		{"progressive", `{"frames": [{"interlaced_frame": 0}]}`, chunkPresentation{}},
		{"interlaced", `{"frames": [{"interlaced_frame": 1, "top_field_first": 0}]}`, chunkPresentation{interlaced: true}},
		{"HDR10", `{"frames": [{"interlaced_frame": 0, "side_data_list": [
			{"side_data_type": "Mastering display metadata",
			 "red_x": "34000/50000", "red_y": "16000/50000", "green_x": "13250/50000", "green_y": "34500/50000",
			 "blue_x": "7500/50000", "blue_y": "3000/50000", "white_point_x": "15635/50000", "white_point_y": "16450/50000",
			 "min_luminance": "1/10000", "max_luminance": "10000000/10000"},
			{"side_data_type": "Content light level metadata", "max_content": 1000, "max_average": 400},
			{"side_data_type": "H.26[45] User Data Unregistered SEI message"}]}]}`,
			chunkPresentation{
				masterDisplay: "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)",
				maxCLL:        "1000,400",
			}},
		{"Matroska's reduced fractions", `{"frames": [{"side_data_list": [
			{"side_data_type": "Mastering display metadata",
			 "red_x": "17/25", "red_y": "8/25", "green_x": "53/200", "green_y": "69/100",
			 "blue_x": "3/20", "blue_y": "3/50", "white_point_x": "3127/10000", "white_point_y": "329/1000",
			 "min_luminance": "1/10000", "max_luminance": "1000/1"}]}]}`,
			chunkPresentation{masterDisplay: "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"}},
		{"mastering display incomplete", `{"frames": [{"side_data_list": [{"side_data_type": "Mastering display metadata", "red_x": "1/2"}]}]}`, chunkPresentation{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChunkPresentation([]byte(tt.report))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := parseChunkPresentation([]byte("not json")); err == nil {
		t.Error("bad JSON: no error")
	}
}

func TestChunkPresentation_OutputOptions(t *testing.T) {
	hdr := chunkPresentation{masterDisplay: "G(1,2)B(3,4)R(5,6)WP(7,8)L(9,10)", maxCLL: "1000,400"}
	tests := []struct {
		name  string
		p     chunkPresentation
		codec string
		in    ffmpeg.KwArgs
		want  ffmpeg.KwArgs
	}{
		{"progressive x264", chunkPresentation{}, "libx264", ffmpeg.KwArgs{}, ffmpeg.KwArgs{}},
		{"interlaced x264", chunkPresentation{interlaced: true}, "libx264", ffmpeg.KwArgs{}, ffmpeg.KwArgs{"flags": "+ildct+ilme"}},
		{"interlaced vp9", chunkPresentation{interlaced: true}, "libvpx-vp9", ffmpeg.KwArgs{}, ffmpeg.KwArgs{}},
		{"HDR x265", hdr, "libx265", ffmpeg.KwArgs{"x265-params": "log-level=error"},
			ffmpeg.KwArgs{"x265-params": "log-level=error:master-display=G(1,2)B(3,4)R(5,6)WP(7,8)L(9,10):max-cll=1000,400"}},
		{"HDR x265 without params", hdr, "libx265", ffmpeg.KwArgs{},
			ffmpeg.KwArgs{"x265-params": "master-display=G(1,2)B(3,4)R(5,6)WP(7,8)L(9,10):max-cll=1000,400"}},
		{"SDR x265", chunkPresentation{}, "libx265", ffmpeg.KwArgs{"x265-params": "log-level=error"}, ffmpeg.KwArgs{"x265-params": "log-level=error"}},
		{"HDR x264", hdr, "libx264", ffmpeg.KwArgs{}, ffmpeg.KwArgs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.outputOptions(tt.codec, tt.in)
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Errorf("got %v, want %v", tt.in, tt.want)
			}
		})
	}
}
