package media_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/master/media"
)

// x265Args is the worker stand-in for HEVC, as encode/ffmpeg.go runs libx265.
var x265Args = []string{"-c:v", "libx265", "-preset", "ultrafast", "-crf", "30", "-x265-params", "log-level=error"}

// lossyArgs stands for an encoder that loses the colour description and
// the pixel shape, to check that Join puts them back.
var lossyArgs = append([]string{"-vf", "setparams=color_primaries=unknown:color_trc=unknown:colorspace=unknown:range=unknown,setsar=1"}, x264Args...)

// hdrParams are x265 parameters of an HDR10 source, closed GOPs (Split
// cannot cut open ones).
const hdrParams = "log-level=error:open-gop=0:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:" +
	"master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"

// tinyVideo is the lavfi input of every generated source: 320x240, 25 fps, 2 s.
var tinyVideo = []string{"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2"}

// x264Source encodes tinyVideo with libx264, a keyframe every 10 frames.
var x264Source = []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "10"}

func mustProbePresentation(t testing.TB, path string) media.Presentation {
	t.Helper()
	p, err := media.ProbePresentation(context.Background(), mediaTools(t), path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFixture writes a fixture file in dir and returns its path.
func writeFixture(t testing.TB, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPresentation_Pipeline makes a source with each presentation property,
// splits it, encodes the chunks as a worker does, joins them into MKV and
// MP4, and checks that the output presents what the source did, and that
// ComparePresentation names exactly what the container or the encoder
// could not carry.
func TestPresentation_Pipeline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srt := writeFixture(t, dir, "subs.srt", "1\n00:00:00,200 --> 00:00:01,000\nhello\n\n")
	meta := writeFixture(t, dir, "meta.txt", ";FFMETADATA1\ntitle=My Film\\; part \\=1\ncomment=a comment\nfoo=bar\n"+
		"[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=Intro\n"+
		"[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2500\ntitle=Main\n")
	plainMP4 := filepath.Join(dir, "plain.mp4")
	ffmpegT(t, append(append(tinyVideo, x264Source...), plainMP4)...)

	tests := []struct {
		name string
		// src is the ffmpeg arguments that write the source, before its
		// path; "" uses plainMP4 as it is.
		src   []string
		ext   string
		codec []string
		// want lists, per output, the start of each warning expected.
		want map[string][]string
		// check tests the output's presentation further.
		check func(t *testing.T, p media.Presentation)
	}{
		{
			name: "rotation",
			src:  []string{"-i", plainMP4, "-c", "copy", "-metadata:s:v:0", "rotate=90"},
			ext:  ".mp4", codec: x264Args,
			want: map[string][]string{
				"out.mkv": {"video rotation: source 90°, output none (ffmpeg 5.1 writes no display matrix to Matroska"},
				"out.mp4": nil,
				"out.mov": nil,
			},
		},
		{
			// MOV keeps a timecode track beside the video (and the video
			// a timecode tag): MOV and MP4 write it as one, Matroska as
			// the video's tag; the track is no stream to leave out.
			name: "timecode track",
			src:  []string{"-i", plainMP4, "-c", "copy", "-timecode", "01:00:00:00"},
			ext:  ".mov", codec: x264Args,
			want: map[string][]string{"out.mkv": nil, "out.mp4": nil, "out.mov": nil},
			check: func(t *testing.T, p media.Presentation) {
				if p.Video.Timecode != "01:00:00:00" {
					t.Errorf("timecode %q, want 01:00:00:00", p.Video.Timecode)
				}
			},
		},
		{
			// Matroska's timecode is the container's tag (as MXF's is):
			// the output's video carries it.
			name: "container timecode",
			src:  []string{"-i", plainMP4, "-c", "copy", "-metadata", "timecode=10:00:00:12"},
			ext:  ".mkv", codec: x264Args,
			want: map[string][]string{"out.mkv": nil, "out.mov": nil},
			check: func(t *testing.T, p media.Presentation) {
				if p.Video.Timecode != "10:00:00:12" {
					t.Errorf("timecode %q, want 10:00:00:12", p.Video.Timecode)
				}
			},
		},
		{
			// The workers' ffmpeg tags its interlaced encode by the
			// pictures' flags ("bt"): Join states the source's order.
			name: "interlaced, top field first",
			src:  append(append(tinyVideo, x264Source...), "-flags", "+ildct+ilme", "-field_order", "tb"),
			ext:  ".mkv", codec: append(slices.Clone(x264Args), "-flags", "+ildct+ilme"),
			want: map[string][]string{
				"out.mkv": nil,
				"out.mp4": {"video field order the container states: source tb, output tt (ffmpeg 5.1 writes none to MP4"},
			},
			check: func(t *testing.T, p media.Presentation) {
				if p.Video.FieldOrder == "progressive" {
					t.Errorf("the output's pictures are progressive")
				}
			},
		},
		{
			name: "colour",
			src:  append(append(tinyVideo, x264Source...), "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "pc"),
			ext:  ".mp4", codec: x264Args,
			want: map[string][]string{"out.mkv": nil, "out.mp4": nil},
			check: func(t *testing.T, p media.Presentation) {
				if v := p.Video; v.ColorPrimaries != "bt709" || v.ColorRange != "pc" {
					t.Errorf("colour %s/%s, want bt709/pc", v.ColorPrimaries, v.ColorRange)
				}
			},
		},
		{
			// A worker that loses colour and pixel shape: Join puts them
			// back in the container and in the H.264 VUI.
			name: "colour and aspect lost by the encoder",
			src: append(append(tinyVideo, x264Source...), "-vf", "setsar=4/3",
				"-color_primaries", "bt470bg", "-color_trc", "smpte170m", "-colorspace", "smpte170m", "-color_range", "tv"),
			ext: ".mkv", codec: lossyArgs,
			want: map[string][]string{"out.mkv": nil, "out.mp4": nil},
			check: func(t *testing.T, p media.Presentation) {
				if v := p.Video; v.SampleAspectRatio != "4:3" || v.ColorSpace != "smpte170m" {
					t.Errorf("SAR %s matrix %s, want 4:3 smpte170m", v.SampleAspectRatio, v.ColorSpace)
				}
			},
		},
		{
			// RGB H.264 (libx264rgb) encoded as YUV: its identity matrix
			// and full range are not written onto the YUV video (players
			// would show the YUV samples as RGB), and what changed is named.
			name: "RGB source",
			src:  append(tinyVideo, "-c:v", "libx264rgb", "-preset", "ultrafast", "-g", "10"),
			ext:  ".mkv", codec: x264Args,
			want: map[string][]string{"out.mkv": {
				// Not the matrix (gbr) or range (pc) of RGB: YUV has its own.
				"video pixel format: source gbrp, output yuv444p (RGB to YUV)",
			}},
			check: func(t *testing.T, p media.Presentation) {
				if v := p.Video; v.ColorSpace == "gbr" || v.PixFmt != "yuv444p" {
					t.Errorf("matrix %q pixel format %q: want YUV video not tagged RGB", v.ColorSpace, v.PixFmt)
				}
			},
		},
		{
			name: "alpha and 12 bits",
			src:  append(tinyVideo, "-c:v", "prores_ks", "-profile:v", "4", "-pix_fmt", "yuva444p10le"),
			ext:  ".mov", codec: x264Args,
			want: map[string][]string{"out.mkv": {"video pixel format: source yuva444p12le, output yuv444p10le (alpha dropped, 12 to 10 bits)"}},
		},
		{
			// VP9 alpha travels beside the pictures: no decode here reads
			// it, and the output must not keep the tag that promises it.
			name: "VP9 alpha",
			src: []string{"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2,format=yuva420p", "-c:v", "libvpx-vp9",
				"-deadline", "realtime", "-cpu-used", "8", "-g", "10"},
			ext: ".webm", codec: x264Args,
			want: map[string][]string{"out.mkv": {"video alpha channel: source carried beside the pictures"}},
			check: func(t *testing.T, p media.Presentation) {
				if p.Video.Alpha {
					t.Error("the output's video says it carries alpha")
				}
			},
		},
		{
			name: "sample aspect ratio",
			src:  append(append(tinyVideo, x264Source...), "-vf", "setsar=4/3"),
			ext:  ".mp4", codec: x264Args,
			want: map[string][]string{"out.mkv": nil, "out.mp4": nil},
		},
		{
			name: "interlaced",
			src:  append(append(tinyVideo, x264Source...), "-flags", "+ildct+ilme", "-top", "1"),
			ext:  ".mp4", codec: x264Args,
			want: map[string][]string{
				"out.mkv": {"video field order: source tff, output progressive (the encoder coded the frames progressive: libx264 needs -flags +ildct+ilme)"},
				"out.mp4": {"video field order: source tff, output progressive"},
			},
		},
		{
			name: "interlaced, encoder told",
			src:  append(append(tinyVideo, x264Source...), "-flags", "+ildct+ilme", "-top", "0"),
			ext:  ".mkv", codec: append([]string{"-flags", "+ildct+ilme"}, x264Args...),
			want: map[string][]string{
				"out.mkv": nil,
				"out.mp4": {"video field order the container states: source bb, output tt (ffmpeg 5.1 writes none to MP4"},
			},
		},
		{
			name: "HDR10",
			src:  append(tinyVideo, "-c:v", "libx265", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p10le", "-x265-params", hdrParams),
			ext:  ".mkv", codec: x265Args,
			want: map[string][]string{
				"out.mkv": {
					"video HDR mastering display: source R(0.68,0.32) G(0.265,0.69) B(0.15,0.06) WP(0.3127,0.329) L(1000,0.0001), output none (the encoder did not write it: libx265 needs",
					"video HDR content light level: source MaxCLL 1000, MaxFALL 400, output none",
				},
				"out.mp4": {"video HDR mastering display: ", "video HDR content light level: "},
			},
			check: func(t *testing.T, p media.Presentation) {
				if v := p.Video; v.ColorTransfer != "smpte2084" || v.ColorPrimaries != "bt2020" {
					t.Errorf("colour %s/%s, want smpte2084/bt2020", v.ColorTransfer, v.ColorPrimaries)
				}
			},
		},
		{
			name: "HDR10, encoder told",
			src:  append(tinyVideo, "-c:v", "libx265", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p10le", "-x265-params", hdrParams),
			ext:  ".mkv",
			codec: []string{"-c:v", "libx265", "-preset", "ultrafast", "-crf", "30", "-x265-params",
				"log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"},
			want: map[string][]string{"out.mkv": nil},
		},
		{
			// Metadata, chapters, two audio and two subtitle tracks with
			// languages, titles and dispositions, the audio starting half
			// a second before the video.
			name: "tracks, metadata and chapters",
			src: []string{"-itsoffset", "0.5", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2",
				"-f", "lavfi", "-i", "sine=f=440:r=48000:d=3", "-f", "lavfi", "-i", "sine=f=660:r=48000:d=3",
				"-i", srt, "-i", srt, "-i", meta,
				"-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3", "-map", "4", "-map_metadata", "5", "-map_chapters", "5",
				"-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-c:a", "aac", "-c:s", "srt",
				"-metadata:s:v:0", "title=Picture", "-metadata:s:v:0", "language=eng",
				"-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=Main",
				"-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Commentary",
				"-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=Full",
				"-metadata:s:s:1", "language=deu", "-metadata:s:s:1", "title=Forced",
				"-disposition:v:0", "default", "-disposition:a:0", "default", "-disposition:a:1", "comment",
				"-disposition:s:0", "0", "-disposition:s:1", "default+forced"},
			ext: ".mkv", codec: x264Args,
			want: map[string][]string{
				"out.mkv": nil,
				"out.mp4": {
					`video title: source Picture, output none (ffmpeg 5.1 writes no track titles to MP4 or MOV`,
					`metadata "foo": source bar, output none (mp4 keeps only the metadata keys its muxer knows)`,
					`stream 1 (audio aac, eng) title: source Main, output none`,
					`stream 2 (audio aac, fra) title: source Commentary, output none`,
					`stream 3 (subtitle subrip, eng) title: source Full, output none`,
					`stream 4 (subtitle subrip, deu) title: source Forced, output none`,
				},
				"out.mov": {
					`video title: source Picture, output none`,
					`metadata "foo": source bar, output none (mov keeps only the metadata keys its muxer knows)`,
					`stream 1 (audio aac, eng) title: source Main, output none`,
					`stream 2 (audio aac, fra) title: source Commentary, output none`,
					`stream 2 (audio aac, fra) disposition: source comment, output none (ffmpeg 5.1's MOV muxer keeps only the default flag)`,
					`stream 3 (subtitle subrip, eng) title: source Full, output none`,
					`stream 4 (subtitle subrip, deu) language: source deu, output none (MOV keeps only languages with a Macintosh language code)`,
					`stream 4 (subtitle subrip, deu) title: source Forced, output none`,
					`stream 4 (subtitle subrip, deu) disposition: source default+forced, output default`,
				},
			},
			check: func(t *testing.T, p media.Presentation) {
				if len(p.Chapters) != 2 || p.Chapters[1].Title != "Main" || p.Tags["title"] != "My Film; part =1" {
					t.Errorf("chapters %+v tags %q", p.Chapters, p.Tags)
				}
				if len(p.Tracks) != 4 || p.Tracks[0].Offset > -0.45 {
					t.Errorf("tracks %+v, want 4, the audio 0.5 s before the video", p.Tracks)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srcPath := plainMP4
			if tt.src != nil {
				srcPath = filepath.Join(t.TempDir(), "src"+tt.ext)
				ffmpegT(t, append(tt.src, srcPath)...)
			}
			src := mustProbe(t, srcPath)
			srcP := mustProbePresentation(t, srcPath)
			shards := encodeShards(t, mustSplit(t, src, 1), tt.codec)
			for name, want := range tt.want {
				out := filepath.Join(t.TempDir(), name)
				joinTo(t, src, shards, out)
				mustVerify(t, src, out)
				container, _ := media.ContainerFor(out)
				outP := mustProbePresentation(t, out)
				got := media.ComparePresentation(srcP, outP, container)
				if !matchWarnings(got, want) {
					t.Errorf("%s: warnings\n\t%s\nwant them to start with\n\t%s", name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
				}
				if tt.check != nil {
					t.Run(name, func(t *testing.T) { tt.check(t, outP) })
				}
			}
		})
	}
}

// matchWarnings reports whether got has one warning per prefix in want,
// in order.
func matchWarnings(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			return false
		}
	}
	return true
}

func TestComparePresentation(t *testing.T) {
	src := media.Presentation{
		Video: media.VideoPresentation{
			Codec: "h264", FPS: 25, Rotation: 90, DisplayMatrix: "m",
			ColorPrimaries: "bt709", ColorTransfer: "bt709", ColorSpace: "bt709", ColorRange: "tv",
			MasteringDisplay: "R(0.68,0.32)", ContentLight: "MaxCLL 1000, MaxFALL 400",
			FieldOrder: "tff", StreamFieldOrder: "tt", SampleAspectRatio: "4:3", Language: "eng", Title: "Picture", Disposition: []string{"default"},
		},
		Tracks: []media.TrackPresentation{
			{Index: 1, Type: "audio", Codec: "aac", Language: "eng", Disposition: []string{"default"}, Offset: -0.5},
			{Index: 2, Type: "subtitle", Codec: "hdmv_pgs_subtitle"},
			{Index: 3, Type: "subtitle", Codec: "subrip", Language: "deu", Title: "Forced", Disposition: []string{"forced"}},
		},
		Tags:     map[string]string{"title": "T", "foo": "bar"},
		Chapters: []media.Chapter{{Start: 0, End: 1, Title: "A"}, {Start: 1, End: 2, Title: "B"}},
	}
	same := src
	same.Tracks = []media.TrackPresentation{src.Tracks[0], src.Tracks[2]} // the bitmap subtitles cannot go to MP4

	bare := media.Presentation{
		Video: media.VideoPresentation{Codec: "h264", FieldOrder: "progressive", SampleAspectRatio: "1:1"},
		Tracks: []media.TrackPresentation{
			{Index: 1, Type: "audio", Codec: "aac", Offset: -0.3},
			{Index: 2, Type: "subtitle", Codec: "mov_text", Language: "deu", Disposition: []string{"forced"}},
			{Index: 3, Type: "audio", Codec: "opus"},
		},
		Tags:     map[string]string{"title": "T"},
		Chapters: []media.Chapter{{Start: 0, End: 1.5, Title: "A"}},
	}
	tests := []struct {
		name      string
		out       media.Presentation
		container string
		want      []string
	}{
		{"identical in matroska", src, "matroska", nil},
		{"identical in mp4", same, "mp4", []string{
			"stream 2 (subtitle hdmv_pgs_subtitle): mp4 cannot carry bitmap subtitles: not in the output",
		}},
		{"everything lost in mkv", bare, "matroska", []string{
			"video rotation: source 90°, output none (ffmpeg 5.1 writes no display matrix to Matroska or WebM)",
			"video colour primaries: source bt709, output none",
			"video transfer characteristics: source bt709, output none",
			"video matrix coefficients: source bt709, output none",
			"video colour range: source tv, output none",
			"video HDR mastering display: source R(0.68,0.32), output none (libx264 in ffmpeg 5.1 writes no HDR metadata, and stream copy cannot add it)",
			"video HDR content light level: source MaxCLL 1000, MaxFALL 400, output none (libx264 in ffmpeg 5.1 writes no HDR metadata, and stream copy cannot add it)",
			"video field order: source tff, output progressive (the encoder coded the frames progressive: libx264 needs -flags +ildct+ilme)",
			"video sample aspect ratio: source 4:3, output 1:1",
			"video language: source eng, output none",
			"video title: source Picture, output none",
			"video disposition: source default, output none",
			`metadata "foo": source bar, output none`,
			"chapters: source 2, output 1",
			"chapter 1 times: source 0.000s-1.000s, output 0.000s-1.500s (from the video's start)",
			"stream 1 (audio aac, eng) language: source eng, output none",
			"stream 1 (audio aac, eng) disposition: source default, output none",
			"stream 1 (audio aac, eng) start against the video: source -0.500s, output -0.300s",
			"stream 2 (subtitle hdmv_pgs_subtitle) language: source none, output deu",
			"stream 2 (subtitle hdmv_pgs_subtitle) disposition: source none, output forced",
			"stream 3 (subtitle subrip, deu): the output's track 3 is audio opus",
		}},
		{"field order the container states", func() media.Presentation {
			p := src
			p.Video.StreamFieldOrder = "bt" // the pictures' flags, as ffmpeg tags an encode
			return p
		}(), "matroska", []string{"video field order the container states: source tt, output bt"}},
		{"field order the codec states, in mp4", func() media.Presentation {
			p := same
			p.Video.StreamFieldOrder = "bb"
			return p
		}(), "mp4", []string{
			"video field order the container states: source tt, output bb (ffmpeg 5.1 writes none to MP4: the file says what the codec's headers say)",
			"stream 2 (subtitle hdmv_pgs_subtitle): mp4 cannot carry bitmap subtitles: not in the output",
		}},
		{"titles and tags in mov", func() media.Presentation {
			p := same
			p.Video.Title, p.Tags = "", map[string]string{"title": "T"}
			p.Tracks = []media.TrackPresentation{src.Tracks[0], {Index: 3, Type: "subtitle", Codec: "mov_text", Disposition: []string{"forced"}}}
			return p
		}(), "mov", []string{
			"video title: source Picture, output none (ffmpeg 5.1 writes no track titles to MP4 or MOV; Join writes the title as the track's handler name)",
			`metadata "foo": source bar, output none (mov keeps only the metadata keys its muxer knows)`,
			"stream 2 (subtitle hdmv_pgs_subtitle): mov cannot carry bitmap subtitles: not in the output",
			"stream 3 (subtitle subrip, deu) language: source deu, output none (MOV keeps only languages with a Macintosh language code)",
			"stream 3 (subtitle subrip, deu) title: source Forced, output none (ffmpeg 5.1 writes no track titles to MP4 or MOV; Join writes the title as the track's handler name)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := media.ComparePresentation(src, tt.out, tt.container)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

// TestProbePresentation_ThumbnailFirst: a one-picture MJPEG thumbnail
// track before the video (camera files): the presentation is the video's
// that Probe picks and the job encodes, not the thumbnail's full range.
func TestProbePresentation_ThumbnailFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	thumb, video, both := filepath.Join(dir, "thumb.mkv"), filepath.Join(dir, "video.mp4"), filepath.Join(dir, "both.mov")
	ffmpegT(t, "-f", "lavfi", "-i", "color=blue:s=160x120:d=1", "-frames:v", "1", "-c:v", "mjpeg", thumb)
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-c:v", "libx264", "-preset", "ultrafast", video)
	ffmpegT(t, "-i", thumb, "-i", video, "-map", "0:v", "-map", "1:v", "-c", "copy", both)
	src := mustProbe(t, both)
	p := mustProbePresentation(t, both)
	if p.Video.Index != src.Video.Index || p.Video.Codec != "h264" || p.Video.ColorRange == "pc" {
		t.Errorf("presentation of stream %d (%s, range %q), want the encoded video's, stream %d", p.Video.Index, p.Video.Codec, p.Video.ColorRange, src.Video.Index)
	}
}
