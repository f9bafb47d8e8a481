package media

// Presentation: how a file shows its video beyond the frames themselves
// (rotation, colour, HDR metadata, field order, pixel shape), what it tells
// about itself (metadata, chapters) and its other tracks (language, title,
// dispositions, offset against the video). ProbePresentation reads it,
// ComparePresentation names what an output lost, and Join uses it to put
// back at the output what the chunks and the workers' encode lost.
//
// Where each property goes missing with ffmpeg 5.1 (master split, worker
// encode, master join):
//
//   - Rotation (the display matrix) is lost in the chunk: Matroska carries
//     none in 5.1. Join writes it again into MP4 and MOV (the mov muxer's
//     "rotate" tag); Matroska and WebM output cannot carry it.
//   - Colour description and sample aspect ratio survive the encode (ffmpeg
//     hands the decoded frames' values to the encoder); where a shard has
//     lost one anyway, Join writes the source's into the container and, for
//     H.264 and HEVC, into the bitstream (h264_metadata, hevc_metadata).
//   - HDR mastering display and content light level are SEI in the
//     bitstream: the chunk keeps them, the encode drops them (5.1's libx264
//     cannot write them; libx265 only with master-display and max-cll in
//     -x265-params). Nothing in 5.1 adds them on stream copy.
//   - Field order: libx264 codes interlaced frames as progressive unless
//     told -flags +ildct+ilme; stream copy cannot undo that.
//   - Metadata, chapters, track languages, titles and dispositions are
//     written by Join from the source; MP4 and MOV have no track titles in
//     5.1 and MOV keeps only Macintosh language codes.

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"

	"github.com/videoshard/videoshard/internal/fftool"
)

// Presentation is what ProbePresentation read from a file.
type Presentation struct {
	// StartTime is the container's start, the origin of the chapters'
	// times.
	StartTime float64
	// Video is the first video stream that is not a cover image.
	Video VideoPresentation
	// Tracks are the audio and subtitle streams, in file order.
	Tracks []TrackPresentation
	// Tags is the container's metadata, keys lower-cased, without the
	// tags a muxer writes about itself (major_brand, minor_version,
	// compatible_brands, encoder). Never nil.
	Tags map[string]string
	// Chapters are in file order.
	Chapters []Chapter
}

// VideoPresentation is how the video stream is to be shown. Empty strings
// mean "not stated" (ffprobe's unknown).
type VideoPresentation struct {
	Index         int
	Codec         string
	Width, Height int
	// PixFmt is the pixel format pictures decode to, e.g. "yuv420p10le":
	// the decoded first frame's, else the stream's; "" when unknown.
	PixFmt string
	// Alpha: the stream says it carries an alpha channel beside its
	// pictures (Matroska's alpha_mode 1, VP8/VP9), which PixFmt does not
	// show.
	Alpha bool
	// FPS is the average frame rate; 0 when unknown.
	FPS float64
	// Rotation is ffprobe's rotation of the display matrix in degrees,
	// normalised to [0, 360); 0 without a matrix. In ffmpeg 5.1 the mov
	// muxer's "rotate" tag of the same value writes the same matrix.
	Rotation float64
	// DisplayMatrix is the matrix as ffprobe prints it, on one line; ""
	// without one. It tells flips apart, which Rotation does not.
	DisplayMatrix string
	// The colour description, by ffprobe's names: "bt709", "smpte2084",
	// "bt2020nc", "tv"/"pc". The decoded first frame's values, which
	// follow the bitstream, else the stream's.
	ColorPrimaries, ColorTransfer, ColorSpace, ColorRange string
	// MasteringDisplay is the HDR mastering display metadata, e.g.
	// "R(0.68,0.32) G(0.265,0.69) B(0.15,0.06) WP(0.3127,0.329) L(1000,0.0001)"
	// (CIE 1931 xy, cd/m²); "" when none.
	MasteringDisplay string
	// ContentLight is the HDR content light level, e.g.
	// "MaxCLL 1000, MaxFALL 400"; "" when none.
	ContentLight string
	// FieldOrder is "progressive", "tff" (interlaced, top field first) or
	// "bff", from the decoded first frame, else from the stream; "" when
	// unknown.
	FieldOrder string
	// StreamFieldOrder is the field order as the container states it, by
	// ffprobe's names ("tt", "tb", "bt", "bb", "progressive"), which
	// players that deinterlace by the container follow; "" when unknown.
	// It may disagree with the pictures' flags (a decoder reads x264's
	// interlaced frames as bottom field first).
	StreamFieldOrder string
	// SampleAspectRatio is the pixel shape, e.g. "4:3"; "1:1" when the
	// file states none.
	SampleAspectRatio string
	// Language ("" for none or "und"), Title and Disposition (the flags
	// set, sorted: "default", "forced", "comment", ...) of the stream.
	Language, Title string
	Disposition     []string
	// StartTime is the stream's first timestamp.
	StartTime float64
	// Timecode is the video's start timecode, e.g. "01:00:00:00": the
	// video stream's timecode tag, else a timecode track's (MOV tmcd),
	// else the container's (MXF, MPEG-2 GOP headers); "" when none.
	Timecode string
}

// TrackPresentation is an audio or subtitle stream.
type TrackPresentation struct {
	Index int
	// Type is "audio" or "subtitle".
	Type  string
	Codec string
	// Language is "" for none or "und".
	Language, Title string
	// Disposition lists the flags set, sorted.
	Disposition []string
	// Offset is the stream's start minus the video's, in seconds: negative
	// when it starts before the video.
	Offset float64
}

// Chapter is one chapter; times in seconds, as in the file.
type Chapter struct {
	Start, End float64
	// Title is the chapter's title tag.
	Title string
	// Tags are all of the chapter's tags, title included, keys lower-cased.
	Tags map[string]string
}

// carriedDispositions are the disposition flags Presentation records:
// those about how a track is meant to be used (not attached_pic and the
// like, which say what a stream is).
var carriedDispositions = []string{
	"default", "dub", "original", "comment", "lyrics", "karaoke", "forced",
	"hearing_impaired", "visual_impaired", "clean_effects", "captions",
	"descriptions", "dependent", "metadata",
}

// muxerTags are container tags a muxer writes about itself.
var muxerTags = []string{"major_brand", "minor_version", "compatible_brands", "encoder"}

// ProbePresentation reads path's presentation with ffprobe: the container,
// its streams and chapters, and the first video frame, decoded (the
// colour, field order and HDR metadata in the bitstream).
//
// Errors are those of Probe: a missing file wraps fs.ErrNotExist, a file
// ffprobe cannot read ErrNotMedia, a file without video ErrNoVideo; an
// ended ctx wraps ctx.Err().
func ProbePresentation(ctx context.Context, tools Tools, path string) (Presentation, error) {
	return probePresentation(ctx, tools, path, nil, 0)
}

// ProbeEncodedPresentation is ProbePresentation of a file made of a
// worker's shards (a shard, or an output Join wrote): read only with the
// demuxers Join lets a shard have, and only if its pictures are at most
// width x height (the source's; 0 for no bound): a bigger one wraps
// ErrNotMedia, saying so, before it is decoded.
func ProbeEncodedPresentation(ctx context.Context, tools Tools, path string, width, height int) (Presentation, error) {
	bound, maxPixels := encodedBound(width, height)
	return probePresentation(ctx, tools, path, bound, maxPixels)
}

// encodedBound are the input options that read a file made of a worker's
// shards: only with the shards' demuxers, only from a local file, and only
// pictures of at most maxPixels, width x height's (no bound for 0).
func encodedBound(width, height int) (bound ffmpeg.KwArgs, maxPixels int64) {
	bound = ffmpeg.KwArgs{"format_whitelist": shardFormats, "protocol_whitelist": "file"}
	if width > 0 && height > 0 {
		maxPixels = fftool.MaxPixels(width, height)
		bound["max_pixels"] = strconv.FormatInt(maxPixels, 10)
	}
	return bound, maxPixels
}

// probePresentation is ProbePresentation with bound's input options, of
// a file whose pictures may have at most maxPixels (0: any).
func probePresentation(ctx context.Context, tools Tools, path string, bound ffmpeg.KwArgs, maxPixels int64) (Presentation, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Presentation{}, fmt.Errorf("probe presentation %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return Presentation{}, fmt.Errorf("probe presentation %s: %w", path, err)
	}
	var rep presentationReport
	if err := runProbe(ctx, tools, abs, &rep, ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{bound, {"show_format": "", "show_streams": "", "show_chapters": ""}})); err != nil {
		return Presentation{}, fmt.Errorf("probe presentation %s: %w", path, err)
	}
	p, err := rep.presentation()
	if err != nil {
		return Presentation{}, fmt.Errorf("probe presentation %s: %w", path, err)
	}
	if maxPixels > 0 && int64(p.Video.Width)*int64(p.Video.Height) > maxPixels {
		return Presentation{}, fmt.Errorf("probe presentation %s: %w: its pictures are %dx%d, more than the %d pixels of the source's",
			path, ErrNotMedia, p.Video.Width, p.Video.Height, maxPixels)
	}
	var frames frameReport
	if err := runProbe(ctx, tools, abs, &frames, ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{bound, {
		"select_streams": strconv.Itoa(p.Video.Index),
		"read_intervals": "%+#1", // the first packet
		"show_frames":    "",
	}})); err != nil {
		return Presentation{}, fmt.Errorf("probe presentation %s: first frame: %w", path, err)
	}
	if len(frames.Frames) > 0 {
		frames.Frames[0].apply(&p.Video)
	}
	return p, nil
}

// runProbe runs ffprobe with opts on the local file abs and decodes its
// JSON report into v. A run that fails wraps ErrNotMedia.
func runProbe(ctx context.Context, tools Tools, abs string, v any, opts ffmpeg.KwArgs) error {
	opts = ffmpeg.MergeKwArgs([]ffmpeg.KwArgs{{"of": "json"}, opts})
	return probeFailed(ctx, fftool.ProbeJSON(ctx, tools.FFprobeBin(), ffprobeArgs(abs, opts), v))
}

// The subset of ffprobe's JSON ProbePresentation reads.
type presentationReport struct {
	Format struct {
		FormatName string            `json:"format_name"`
		StartTime  string            `json:"start_time"`
		Tags       map[string]string `json:"tags"`
	} `json:"format"`
	Streams  []presentationStream `json:"streams"`
	Chapters []struct {
		StartTime string            `json:"start_time"`
		EndTime   string            `json:"end_time"`
		Tags      map[string]string `json:"tags"`
	} `json:"chapters"`
}

type presentationStream struct {
	Index             int               `json:"index"`
	CodecType         string            `json:"codec_type"`
	CodecName         string            `json:"codec_name"`
	PixFmt            string            `json:"pix_fmt"`
	Width             int               `json:"width"`
	Height            int               `json:"height"`
	AvgFrameRate      string            `json:"avg_frame_rate"`
	RFrameRate        string            `json:"r_frame_rate"`
	StartTime         string            `json:"start_time"`
	ColorRange        string            `json:"color_range"`
	ColorSpace        string            `json:"color_space"`
	ColorTransfer     string            `json:"color_transfer"`
	ColorPrimaries    string            `json:"color_primaries"`
	FieldOrder        string            `json:"field_order"`
	SampleAspectRatio string            `json:"sample_aspect_ratio"`
	SideData          []sideData        `json:"side_data_list"`
	Tags              map[string]string `json:"tags"`
	Disposition       map[string]int    `json:"disposition"`
}

// sideData is a stream's or a frame's side data, the kinds used.
type sideData struct {
	Type          string   `json:"side_data_type"`
	DisplayMatrix string   `json:"displaymatrix"`
	Rotation      *float64 `json:"rotation"`
	RedX          string   `json:"red_x"`
	RedY          string   `json:"red_y"`
	GreenX        string   `json:"green_x"`
	GreenY        string   `json:"green_y"`
	BlueX         string   `json:"blue_x"`
	BlueY         string   `json:"blue_y"`
	WhiteX        string   `json:"white_point_x"`
	WhiteY        string   `json:"white_point_y"`
	MinLuminance  string   `json:"min_luminance"`
	MaxLuminance  string   `json:"max_luminance"`
	MaxContent    *int     `json:"max_content"`
	MaxAverage    *int     `json:"max_average"`
}

type frameReport struct {
	Frames []probedFrame `json:"frames"`
}

type probedFrame struct {
	PixFmt          string     `json:"pix_fmt"`
	InterlacedFrame int        `json:"interlaced_frame"`
	TopFieldFirst   int        `json:"top_field_first"`
	ColorRange      string     `json:"color_range"`
	ColorSpace      string     `json:"color_space"`
	ColorTransfer   string     `json:"color_transfer"`
	ColorPrimaries  string     `json:"color_primaries"`
	SideData        []sideData `json:"side_data_list"`
}

func (r presentationReport) presentation() (Presentation, error) {
	p := Presentation{StartTime: parseSeconds(r.Format.StartTime), Tags: map[string]string{}}
	timecode := ""
	for k, v := range r.Format.Tags {
		switch k = strings.ToLower(k); {
		case k == "timecode":
			timecode = v // the video's, below
		case !slices.Contains(muxerTags, k):
			p.Tags[k] = v
		}
	}
	for _, c := range r.Chapters {
		ch := Chapter{Start: parseSeconds(c.StartTime), End: parseSeconds(c.EndTime), Tags: map[string]string{}}
		for k, v := range c.Tags {
			ch.Tags[strings.ToLower(k)] = v
		}
		ch.Title = ch.Tags["title"]
		p.Chapters = append(p.Chapters, ch)
	}
	video := shownVideo(len(r.Streams), func(i int) (bool, int, int) {
		s := r.Streams[i]
		return s.CodecType == "video" && s.Disposition["attached_pic"] == 0, s.Disposition["default"], s.Width * s.Height
	})
	found := video >= 0
	if found {
		p.Video = r.Streams[video].videoPresentation()
		p.Video.Timecode = cmp.Or(tag(r.Streams[video].Tags, "timecode"), timecodeTrack(r.Streams), timecode)
	}
	for _, s := range r.Streams {
		switch {
		case s.CodecType == "audio" || s.CodecType == "subtitle":
			p.Tracks = append(p.Tracks, TrackPresentation{
				Index:       s.Index,
				Type:        s.CodecType,
				Codec:       s.CodecName,
				Language:    language(s.Tags),
				Title:       tag(s.Tags, "title"),
				Disposition: dispositions(s.Disposition),
				Offset:      parseSeconds(s.StartTime),
			})
		}
	}
	if !found {
		return Presentation{}, fmt.Errorf("%w: no video stream", ErrNoVideo)
	}
	for i := range p.Tracks {
		p.Tracks[i].Offset -= p.Video.StartTime
	}
	return p, nil
}

// timecodeTrack is the timecode of the first data stream with one (a MOV
// timecode track); "".
func timecodeTrack(streams []presentationStream) string {
	for _, s := range streams {
		if tc := tag(s.Tags, "timecode"); s.CodecType == "data" && tc != "" {
			return tc
		}
	}
	return ""
}

// validTimecode matches a timecode as ffmpeg writes and reads one,
// "HH:MM:SS:FF" (";" or "." before the frames when drop-frame): what Join
// may pass on to ffmpeg's muxers.
var validTimecode = regexp.MustCompile(`^[0-9]{2}:[0-9]{2}:[0-9]{2}[:;.][0-9]{2,3}$`)

// PlaceVideo moves the video's start to start (a first picture's time,
// where ffprobe saw only packets), and the tracks' offsets with it.
func (p *Presentation) PlaceVideo(start float64) {
	for i := range p.Tracks {
		p.Tracks[i].Offset += p.Video.StartTime - start
	}
	p.Video.StartTime = start
}

// PlaceAudio moves each audio track listed in starts (by stream index, as
// Verification's AudioStarts give them: where its first sample of the
// source's sound plays, which a stream's start time may not say) to
// start there.
func (p *Presentation) PlaceAudio(starts map[int]float64) {
	for i, t := range p.Tracks {
		if start, ok := starts[t.Index]; ok && t.Type == "audio" {
			p.Tracks[i].Offset = start - p.Video.StartTime
		}
	}
}

func (s presentationStream) videoPresentation() VideoPresentation {
	v := VideoPresentation{
		Index:             s.Index,
		Codec:             s.CodecName,
		PixFmt:            s.PixFmt,
		Width:             s.Width,
		Height:            s.Height,
		FPS:               parseRate(s.AvgFrameRate),
		ColorPrimaries:    known(s.ColorPrimaries),
		ColorTransfer:     known(s.ColorTransfer),
		ColorSpace:        known(s.ColorSpace),
		ColorRange:        known(s.ColorRange),
		FieldOrder:        fieldOrder(s.FieldOrder),
		StreamFieldOrder:  streamFieldOrder(s.FieldOrder),
		SampleAspectRatio: aspect(s.SampleAspectRatio),
		Language:          language(s.Tags),
		Title:             tag(s.Tags, "title"),
		Disposition:       dispositions(s.Disposition),
		StartTime:         parseSeconds(s.StartTime),
		Alpha:             tag(s.Tags, "alpha_mode") == "1",
	}
	if v.FPS <= 0 {
		v.FPS = parseRate(s.RFrameRate)
	}
	v.applySideData(s.SideData)
	return v
}

// apply puts in what the first decoded frame shows, which follows the
// bitstream: its colour description where it states one, its field order,
// and HDR metadata carried in SEI rather than in the container.
func (f probedFrame) apply(v *VideoPresentation) {
	if f.PixFmt != "" {
		v.PixFmt = f.PixFmt
	}
	for _, c := range []struct {
		dst *string
		val string
	}{
		{&v.ColorPrimaries, f.ColorPrimaries},
		{&v.ColorTransfer, f.ColorTransfer},
		{&v.ColorSpace, f.ColorSpace},
		{&v.ColorRange, f.ColorRange},
	} {
		if val := known(c.val); val != "" {
			*c.dst = val
		}
	}
	switch {
	case f.InterlacedFrame == 0:
		v.FieldOrder = "progressive"
	case f.TopFieldFirst != 0:
		v.FieldOrder = "tff"
	default:
		v.FieldOrder = "bff"
	}
	v.applySideData(f.SideData)
}

// applySideData records the display matrix and HDR metadata in list.
func (v *VideoPresentation) applySideData(list []sideData) {
	for _, sd := range list {
		switch sd.Type {
		case "Display Matrix":
			v.DisplayMatrix = strings.Join(strings.Fields(sd.DisplayMatrix), " ")
			if sd.Rotation != nil {
				v.Rotation = normalizeDegrees(*sd.Rotation)
			}
		case "Mastering display metadata":
			if sd.RedX != "" {
				v.MasteringDisplay = fmt.Sprintf("R(%s,%s) G(%s,%s) B(%s,%s) WP(%s,%s) L(%s,%s)",
					ratio(sd.RedX), ratio(sd.RedY), ratio(sd.GreenX), ratio(sd.GreenY),
					ratio(sd.BlueX), ratio(sd.BlueY), ratio(sd.WhiteX), ratio(sd.WhiteY),
					ratio(sd.MaxLuminance), ratio(sd.MinLuminance))
			}
		case "Content light level metadata":
			if sd.MaxContent != nil && sd.MaxAverage != nil {
				v.ContentLight = fmt.Sprintf("MaxCLL %d, MaxFALL %d", *sd.MaxContent, *sd.MaxAverage)
			}
		}
	}
}

// normalizeDegrees maps d to [0, 360), rounded to a thousandth.
func normalizeDegrees(d float64) float64 {
	d = math.Mod(d, 360)
	if d < 0 {
		d += 360
	}
	d = math.Round(d*1000) / 1000
	if d == 360 {
		d = 0
	}
	return d
}

// ratio formats ffprobe's "34000/50000" as "0.68", to five significant
// digits, so that Matroska's floating-point values and MP4's and HEVC's
// fixed-point ones compare equal.
func ratio(s string) string {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return s
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', 5, 64)
}

// known maps ffprobe's "unknown" (and the absent field) to "".
func known(s string) string {
	switch s {
	case "", "unknown", "unspecified", "reserved", "N/A":
		return ""
	}
	return s
}

// fieldOrder normalises a stream's field_order: ffmpeg's "tt" and "tb"
// both code the top field first (what the second letter means is used
// inconsistently), "bb" and "bt" the bottom field.
func fieldOrder(s string) string {
	switch s {
	case "progressive":
		return "progressive"
	case "tt", "tb":
		return "tff"
	case "bb", "bt":
		return "bff"
	}
	return ""
}

// streamFieldOrder is a stream's field_order as ffprobe names it, "" for
// none stated.
func streamFieldOrder(s string) string {
	if fieldOrder(s) == "" {
		return ""
	}
	return s
}

// aspect normalises a sample aspect ratio: none stated ("0:1", "N/A",
// absent) is "1:1".
func aspect(s string) string {
	n, d, ok := strings.Cut(s, ":")
	if !ok || n == "0" || d == "0" {
		return "1:1"
	}
	return s
}

// tag looks key up in tags regardless of case (Matroska upper-cases).
func tag(tags map[string]string, key string) string {
	for k, v := range tags {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func language(tags map[string]string) string {
	if l := tag(tags, "language"); l != "und" {
		return l
	}
	return ""
}

// dispositions lists the carriedDispositions set in d, sorted.
func dispositions(d map[string]int) []string {
	var set []string
	for _, name := range carriedDispositions {
		if d[name] != 0 {
			set = append(set, name)
		}
	}
	slices.Sort(set)
	return set
}

// ComparePresentation names each way out, written in container (as
// ContainerFor returns it), presents src's video differently: one warning
// per property, naming it, the source's value and the output's, and, where
// it is a known limit of ffmpeg 5.1 or of the container, why. The order is
// fixed: the video's properties, the container's metadata (keys sorted),
// the chapters, then each of the source's audio and subtitle tracks in
// file order. No warnings means nothing was lost.
//
// Tracks are matched as Join writes them: the source's audio, then its
// subtitles, less those the container cannot carry (see ExtractSideStreams;
// those are named too). A track Join converts (Vorbis to AAC, SubRip to
// mov_text) is not a difference; its language, title, dispositions and, for
// audio, offset from the video (within one frame) are compared. Tags the
// output has and the source does not are not differences.
func ComparePresentation(src, out Presentation, container string) []string {
	c := comparison{container: container}
	sv, ov := src.Video, out.Video

	flipped := mirrored(sv.DisplayMatrix)
	if flipped && !mirrored(ov.DisplayMatrix) {
		c.diff("video display matrix", "mirrored ("+sv.DisplayMatrix+")", ov.DisplayMatrix,
			"ffmpeg 5.1 writes rotations only: the output is shown without the source's flip")
	} else {
		c.diff("video rotation", degrees(sv.Rotation), degrees(ov.Rotation), c.rotationWhy())
	}
	if !flipped && sv.Rotation == ov.Rotation && sv.DisplayMatrix != ov.DisplayMatrix && (sv.DisplayMatrix != "" || ov.DisplayMatrix != "") {
		c.diff("video display matrix", sv.DisplayMatrix, ov.DisplayMatrix, "")
	}
	if loss := pixFormatLoss(sv.PixFmt, ov.PixFmt); loss != "" {
		c.diff("video pixel format", sv.PixFmt, ov.PixFmt, loss)
	}
	if sv.Alpha && !ov.Alpha && !pixFormatHasAlpha(ov.PixFmt) {
		c.diff("video alpha channel", "carried beside the pictures (alpha_mode 1)", "none",
			"ffmpeg's native "+strings.ToUpper(cmp.Or(sv.Codec, "vp9"))+" decoder does not read it: the output is opaque")
	}
	c.diff("video colour primaries", sv.ColorPrimaries, ov.ColorPrimaries, "")
	c.diff("video transfer characteristics", sv.ColorTransfer, ov.ColorTransfer, "")
	if sameColourModel(sv.PixFmt, ov.PixFmt) {
		// RGB has neither; the YUV it was encoded to states its own.
		c.diff("video matrix coefficients", sv.ColorSpace, ov.ColorSpace, "")
		c.diff("video colour range", sv.ColorRange, ov.ColorRange, "")
	}
	c.diff("video HDR mastering display", sv.MasteringDisplay, ov.MasteringDisplay, hdrWhy(ov.Codec))
	c.diff("video HDR content light level", sv.ContentLight, ov.ContentLight, hdrWhy(ov.Codec))
	if sv.FieldOrder != "" {
		c.diff("video field order", sv.FieldOrder, ov.FieldOrder, fieldOrderWhy(sv.FieldOrder, ov.FieldOrder, ov.Codec))
	}
	if fieldOrder(sv.StreamFieldOrder) != "progressive" && ov.FieldOrder != "progressive" {
		why := ""
		if container == "mp4" || container == "mov" {
			why = "ffmpeg 5.1 writes none to " + strings.ToUpper(container) + ": the file says what the codec's headers say"
		}
		c.diff("video field order the container states", sv.StreamFieldOrder, ov.StreamFieldOrder, why)
	}
	c.diff("video sample aspect ratio", sv.SampleAspectRatio, ov.SampleAspectRatio, "")
	c.diff("video timecode", sv.Timecode, ov.Timecode, "")
	c.diff("video language", sv.Language, ov.Language, "")
	c.diff("video title", sv.Title, ov.Title, c.titleWhy())
	c.diff("video disposition", strings.Join(sv.Disposition, "+"), c.outDisposition(ov.Disposition, slices.Contains(sv.Disposition, "default"), true), c.dispositionWhy())

	keys := make([]string, 0, len(src.Tags))
	for k := range src.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		why := ""
		if _, ok := out.Tags[k]; !ok && (container == "mp4" || container == "mov") {
			why = container + " keeps only the metadata keys its muxer knows"
		}
		c.diff("metadata "+strconv.Quote(k), src.Tags[k], out.Tags[k], why)
	}

	if len(src.Chapters) != len(out.Chapters) {
		c.diff("chapters", strconv.Itoa(len(src.Chapters)), strconv.Itoa(len(out.Chapters)), "")
	}
	for i := range min(len(src.Chapters), len(out.Chapters)) {
		s, o := src.Chapters[i], out.Chapters[i]
		name := fmt.Sprintf("chapter %d", i+1)
		// Against the video, which Join places exactly: the container's
		// start moves with any stream's (an Opus track's pre-skip shifts
		// on every Matroska remux in ffmpeg 5.1).
		so, oo := src.Video.StartTime, out.Video.StartTime
		if !near(s.Start-so, o.Start-oo, durationSlack) || !near(s.End-so, o.End-oo, durationSlack) {
			c.diff(name+" times",
				fmt.Sprintf("%.3fs-%.3fs", s.Start-so, s.End-so),
				fmt.Sprintf("%.3fs-%.3fs", o.Start-oo, o.End-oo), "from the video's start")
		}
		c.diff(name+" title", s.Title, o.Title, "")
	}

	c.tracks(src, out)
	return c.warnings
}

// comparison collects ComparePresentation's warnings.
type comparison struct {
	container string
	warnings  []string
}

// diff adds a warning when the source's value s and the output's o differ.
func (c *comparison) diff(what, s, o, why string) {
	if s == o {
		return
	}
	w := fmt.Sprintf("%s: source %s, output %s", what, shown(s), shown(o))
	if why != "" {
		w += " (" + why + ")"
	}
	c.warnings = append(c.warnings, w)
}

// tracks compares the source's audio and subtitle tracks with the output's.
func (c *comparison) tracks(src, out Presentation) {
	info := SourceInfo{}
	bySource := map[int]TrackPresentation{}
	for _, t := range src.Tracks {
		bySource[t.Index] = t
		s := StreamInfo{Index: t.Index, Type: t.Type, Codec: t.Codec}
		if t.Type == "audio" {
			info.Audio = append(info.Audio, s)
		} else {
			info.Other = append(info.Other, s)
		}
	}
	plan, err := planSideStreams(info, c.container)
	if err != nil { // an unknown container: match in order
		plan = SideStreams{}
		for _, s := range append(info.Audio, info.Other...) {
			plan.Streams = append(plan.Streams, SideStream{SourceIndex: s.Index, Type: s.Type, Codec: s.Codec})
		}
	}
	for _, d := range plan.Dropped {
		c.warnings = append(c.warnings, d+": not in the output")
	}
	defaults := map[string]bool{}
	for _, ps := range plan.Streams {
		if slices.Contains(bySource[ps.SourceIndex].Disposition, "default") {
			defaults[ps.Type] = true
		}
	}
	tol := durationSlack + 0.05
	if src.Video.FPS > 0 {
		tol = durationSlack + 1/src.Video.FPS
	}
	for i, ps := range plan.Streams {
		s := bySource[ps.SourceIndex]
		name := fmt.Sprintf("stream %d (%s %s", s.Index, s.Type, s.Codec)
		if s.Language != "" {
			name += ", " + s.Language
		}
		name += ")"
		if i >= len(out.Tracks) {
			c.warnings = append(c.warnings, name+": missing from the output")
			continue
		}
		o := out.Tracks[i]
		if o.Type != s.Type {
			c.warnings = append(c.warnings, fmt.Sprintf("%s: the output's track %d is %s %s", name, i+1, o.Type, o.Codec))
			continue
		}
		c.diff(name+" language", s.Language, o.Language, c.languageWhy())
		c.diff(name+" title", s.Title, o.Title, c.titleWhy())
		first := !slices.ContainsFunc(out.Tracks[:i], func(p TrackPresentation) bool { return p.Type == o.Type })
		c.diff(name+" disposition", strings.Join(s.Disposition, "+"), c.outDisposition(o.Disposition, defaults[s.Type], first), c.dispositionWhy())
		if s.Type == "audio" && math.Abs(s.Offset-o.Offset) > tol {
			c.diff(name+" start against the video", fmt.Sprintf("%+.3fs", s.Offset), fmt.Sprintf("%+.3fs", o.Offset), "")
		}
	}
	for _, o := range out.Tracks[min(len(plan.Streams), len(out.Tracks)):] {
		c.warnings = append(c.warnings, fmt.Sprintf("output stream %d (%s %s): not in the source", o.Index, o.Type, o.Codec))
	}
}

// outDisposition formats an output track's flags for comparison. The mov
// muxer enables (marks default) the first track of each type when none of
// that type is default; that "default" is the container's, not a
// difference.
func (c *comparison) outDisposition(flags []string, srcHasDefault, firstOfType bool) string {
	if (c.container == "mp4" || c.container == "mov") && !srcHasDefault && firstOfType {
		flags = slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == "default" })
	}
	return strings.Join(flags, "+")
}

func (c *comparison) rotationWhy() string {
	if c.container == "matroska" || c.container == "webm" {
		return "ffmpeg 5.1 writes no display matrix to Matroska or WebM"
	}
	return ""
}

func (c *comparison) titleWhy() string {
	if c.container == "mp4" || c.container == "mov" {
		return "ffmpeg 5.1 writes no track titles to MP4 or MOV; Join writes the title as the track's handler name"
	}
	return ""
}

func (c *comparison) dispositionWhy() string {
	if c.container == "mov" {
		return "ffmpeg 5.1's MOV muxer keeps only the default flag"
	}
	return ""
}

func (c *comparison) languageWhy() string {
	if c.container == "mov" {
		return "MOV keeps only languages with a Macintosh language code"
	}
	return ""
}

func hdrWhy(outCodec string) string {
	switch outCodec {
	case "h264":
		return "libx264 in ffmpeg 5.1 writes no HDR metadata, and stream copy cannot add it"
	case "hevc":
		return "the encoder did not write it: libx265 needs master-display and max-cll in -x265-params"
	}
	return "the encoder did not write it, and stream copy cannot add it"
}

func fieldOrderWhy(src, out, outCodec string) string {
	if out != "progressive" || src == "progressive" || src == "" {
		return ""
	}
	if outCodec == "h264" {
		return "the encoder coded the frames progressive: libx264 needs -flags +ildct+ilme"
	}
	return "the encoder coded the frames progressive"
}

func degrees(d float64) string {
	if d == 0 {
		return ""
	}
	return strconv.FormatFloat(d, 'f', -1, 64) + "°"
}

func shown(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// H.273 code points of ffprobe's colour names, for h264_metadata and
// hevc_metadata, which take numbers.
var (
	primariesCodes = map[string]int{
		"bt709": 1, "bt470m": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "film": 8,
		"bt2020": 9, "smpte428": 10, "smpte431": 11, "smpte432": 12, "jedec-p22": 22,
	}
	transferCodes = map[string]int{
		"bt709": 1, "gamma22": 4, "gamma28": 5, "smpte170m": 6, "smpte240m": 7, "linear": 8,
		"log100": 9, "log316": 10, "iec61966-2-4": 11, "bt1361e": 12, "iec61966-2-1": 13,
		"bt2020-10": 14, "bt2020-12": 15, "smpte2084": 16, "smpte428": 17, "arib-std-b67": 18,
	}
	matrixCodes = map[string]int{
		"gbr": 0, "bt709": 1, "fcc": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "ycgco": 8,
		"bt2020nc": 9, "bt2020c": 10, "smpte2085": 11, "chroma-derived-nc": 12, "chroma-derived-c": 13, "ictcp": 14,
	}
)

// presentationOutput adds to Join's output options (out) what puts the
// source's presentation back, given what the shards (shard, the first
// one's) kept. The video is output stream 0, side.Streams follow.
//
//   - dispositions of every stream, exactly the source's (Matroska's
//     default_mode passthrough: no default flag is inferred);
//   - the video's language and title; in MP4 and MOV, which have no track
//     titles, each title as the track's handler name;
//   - in MP4 and MOV, the source's rotation (the mov muxer's "rotate" tag);
//   - each colour property and the sample aspect ratio the shards lost
//     (state none) while the source states one: in the container
//     (-color_primaries and friends, -aspect) and, for H.264 and HEVC, in the
//     bitstream (h264_metadata, hevc_metadata). A value the shards state is
//     kept even where it differs from the source's: it describes their
//     pixels; ComparePresentation names the difference.
func presentationOutput(src, shard Presentation, side SideStreams, container string, out ffmpeg.KwArgs) {
	mov := container == "mp4" || container == "mov"
	if container == "matroska" || container == "webm" {
		out["default_mode"] = "passthrough"
	}
	sv := src.Video
	var videoTags []string
	if sv.Language != "" {
		videoTags = append(videoTags, "language="+sv.Language)
	}
	if sv.Title != "" {
		videoTags = append(videoTags, "title="+sv.Title)
		if mov {
			videoTags = append(videoTags, "handler_name="+sv.Title)
		}
	}
	if validTimecode.MatchString(sv.Timecode) {
		// MP4 and MOV write it as a timecode track, Matroska as a tag.
		videoTags = append(videoTags, "timecode="+sv.Timecode)
	}
	if mov && sv.Rotation != 0 && !mirrored(sv.DisplayMatrix) {
		// A mirroring matrix is no rotation: the rotate tag would show the
		// picture turned instead of flipped (ComparePresentation warns).
		videoTags = append(videoTags, "rotate="+strconv.FormatFloat(sv.Rotation, 'f', -1, 64))
	}
	// A VP9 stream's alpha travels beside its pictures, which no decode
	// here reads (ComparePresentation warns): the tag the shards copied
	// from their chunk would promise an alpha the output lacks.
	videoTags = append(videoTags, "alpha_mode=")
	out["metadata:s:0"] = videoTags
	out["disposition:0"] = dispositionArg(sv.Disposition)
	for i, s := range side.Streams {
		n := strconv.Itoa(1 + i)
		for _, t := range src.Tracks {
			if t.Index != s.SourceIndex {
				continue
			}
			out["disposition:"+n] = dispositionArg(t.Disposition)
			if mov && t.Title != "" {
				out["metadata:s:"+n] = "handler_name=" + t.Title
			}
		}
	}

	var bsf []string
	cv := shard.Video
	for _, p := range []struct {
		src, shard, option, field string
		codes                     map[string]int
	}{
		{sv.ColorPrimaries, cv.ColorPrimaries, "color_primaries", "colour_primaries", primariesCodes},
		{sv.ColorTransfer, cv.ColorTransfer, "color_trc", "transfer_characteristics", transferCodes},
		{sv.ColorSpace, cv.ColorSpace, "colorspace", "matrix_coefficients", matrixCodes},
		{sv.ColorRange, cv.ColorRange, "color_range", "video_full_range_flag", map[string]int{"tv": 0, "pc": 1}},
	} {
		if p.src == "" || p.shard != "" {
			continue
		}
		if (p.option == "colorspace" || p.option == "color_range") && !sameColourModel(sv.PixFmt, cv.PixFmt) {
			// An RGB source encoded as YUV: its identity matrix and full
			// range would make players read the YUV samples as RGB.
			continue
		}
		out[p.option+":v:0"] = cmp.Or(optionNames[p.src], p.src)
		if code, ok := p.codes[p.src]; ok {
			bsf = append(bsf, p.field+"="+strconv.Itoa(code))
		}
	}
	if sv.SampleAspectRatio != "1:1" && cv.SampleAspectRatio == "1:1" && cv.Width > 0 && cv.Height > 0 {
		if sar, ok := new(big.Rat).SetString(strings.Replace(sv.SampleAspectRatio, ":", "/", 1)); ok {
			dar := new(big.Rat).Mul(sar, big.NewRat(int64(cv.Width), int64(cv.Height)))
			out["aspect:v:0"] = dar.Num().String() + ":" + dar.Denom().String()
			bsf = append(bsf, "sample_aspect_ratio="+sar.RatString())
		}
	}
	// The workers' ffmpeg tags an interlaced encode by its pictures' flags
	// ("bt" for x264's, which decode as bottom field first), not as the
	// source's container says: a player that deinterlaces by the
	// container would show the fields in another order than the source.
	if fieldOrder(sv.StreamFieldOrder) != "progressive" && sv.StreamFieldOrder != "" && cv.FieldOrder != "progressive" {
		out["field_order:v:0"] = sv.StreamFieldOrder
	}
	if len(bsf) > 0 && (cv.Codec == "h264" || cv.Codec == "hevc") {
		out["bsf:v:0"] = cv.Codec + "_metadata=" + strings.Join(bsf, ":")
	}
}

// sameColourModel reports whether two pixel formats are both RGB or both
// not (YUV, grey): a matrix or a range means the same to both; true when
// either is not known.
func sameColourModel(a, b string) bool {
	pa, pb := parsePixFormat(a), parsePixFormat(b)
	return pa.model == "" || pb.model == "" || (pa.model == "rgb") == (pb.model == "rgb")
}

// mirrored reports whether a display matrix, as ffprobe prints it on one
// line ("00000000: a b u 00000001: c d v 00000002: x y w"), flips the
// picture: its 2x2 part's determinant, ad - bc, is negative.
func mirrored(matrix string) bool {
	f := strings.Fields(matrix)
	if len(f) < 7 {
		return false
	}
	var m [4]float64
	for i, at := range []int{1, 2, 5, 6} {
		v, err := strconv.ParseFloat(f[at], 64)
		if err != nil {
			return false
		}
		m[i] = v
	}
	return m[0]*m[3]-m[1]*m[2] < 0
}

// optionNames are the colour names ffprobe reports that ffmpeg's options
// spell otherwise (av_color_space_name says "gbr", -colorspace "rgb").
var optionNames = map[string]string{"gbr": "rgb"}

// dispositionArg is the -disposition value that sets exactly flags.
func dispositionArg(flags []string) string {
	if len(flags) == 0 {
		return "0"
	}
	return strings.Join(flags, "+")
}

// writeFFMetadata writes p's container metadata and chapters as an
// FFMETADATA1 file beside the output (dir, base) and returns its name.
// Chapter times are moved by -origin, the way ffmpeg moves the streams to
// start at zero; microseconds.
func writeFFMetadata(dir, base string, p Presentation, origin float64) (string, error) {
	var b strings.Builder
	b.WriteString(";FFMETADATA1\n")
	writeTags := func(tags map[string]string) {
		keys := make([]string, 0, len(tags))
		for k := range tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString(ffmetaEscape(k) + "=" + ffmetaEscape(tags[k]) + "\n")
		}
	}
	writeTags(p.Tags)
	micros := func(t float64) int64 { return max(0, int64(math.Round((t-origin)*1e6))) }
	for _, c := range p.Chapters {
		fmt.Fprintf(&b, "[CHAPTER]\nTIMEBASE=1/1000000\nSTART=%d\nEND=%d\n", micros(c.Start), micros(c.End))
		writeTags(c.Tags)
	}
	return writeTemp(dir, "."+base+".*.ffmeta", b.String())
}

// ffmetaEscape escapes what FFMETADATA1 gives a meaning: '=', ';', '#',
// '\\' and line breaks, each with a backslash.
func ffmetaEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '=', ';', '#', '\\', '\n':
			b.WriteByte('\\')
		case '\r':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
