package media

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ffmpeg "github.com/u2takey/ffmpeg-go"
	"golang.org/x/sync/errgroup"

	"github.com/videoshard/videoshard/internal/fsutil"
)

// shardFormats are the demuxers Join lets ffmpeg use on a shard: what
// workers write. Anything else (a playlist, a concat script) is refused, so
// a shard cannot make ffmpeg read other files into the output.
const shardFormats = "matroska,webm,mov"

// ShardFormats lists shardFormats, for readers of shards elsewhere.
func ShardFormats() []string { return strings.Split(shardFormats, ",") }

// SideStream is a source stream carried around the chunks: audio and
// subtitles go into the output once, from the side file, never through the
// workers (cutting audio at chunk boundaries would leave gaps from encoder
// priming and let it drift).
type SideStream struct {
	// SourceIndex is the stream's index in the source.
	SourceIndex int
	// Type is "audio" or "subtitle".
	Type string
	// Codec is the source's codec.
	Codec string
	// Encoder is "" when Join copies the stream into the output as it is,
	// or the encoder Join converts it with because the output container
	// cannot carry Codec (see audioEncoder): "flac" (Matroska), "alac"
	// (MP4, MOV) for lossless audio, "aac" (Matroska, MP4, MOV) or
	// "libopus" (WebM) for the rest; "srt", "mov_text", "webvtt" for text
	// subtitles.
	Encoder string
	// Bitrate is the audio bitrate for Encoder, e.g. "160k"; "" otherwise.
	Bitrate string
	// DecodeDelay is how much later, in seconds, the decoder's first sound
	// comes than the first packet played (WMA's first two packets decode
	// to nothing): a conversion starts that much later, as the sound
	// does. Set by PlanSideStreams for converted audio; 0 otherwise.
	DecodeDelay float64
}

// SideStreams is what ExtractSideStreams planned and wrote.
type SideStreams struct {
	// Path is the file Join maps Streams from: the source itself. "" when
	// there is nothing to carry.
	Path string
	// Container is the output container the plan is for.
	Container string
	// Streams are the streams the output will carry besides its video.
	Streams []SideStream
	// Dropped names each source stream left out, and why: subtitles the
	// container cannot carry (bitmap subtitles in MP4 or WebM), data and
	// attachment streams, further video streams and cover images, tracks
	// with no packets in a container that drops empty tracks, and the
	// streams of other programmes than the video's.
	Dropped []string
	// Left are the audio and subtitle streams (by index) left out that
	// the output is not to be faulted for: those with no packets (MP4 and
	// MOV leave such a track out) and those of another programme. The
	// output is checked without them (SourceInfo.Without).
	Left []int
}

// dropsEmptyTracks are the containers whose muxer leaves out a track with
// no packets.
var dropsEmptyTracks = []string{"mp4", "mov"}

// Audio codecs each container takes as they are; others are converted
// (audioEncoder). Each was checked as ffmpeg 5.1 writes a stream copy and
// reads it back: a muxer that knows no tag for a codec may still write it,
// under a tag nothing decodes (ADPCM from Flash in Matroska, Blu-ray PCM
// in MOV), or as another codec (pcm_s64le in MOV reads as pcm_s16le).
var audioCodecsFor = map[string][]string{
	"matroska": {"aac", "ac3", "eac3", "dts", "truehd", "mlp", "mp1", "mp2", "mp3", "opus", "vorbis",
		"flac", "alac", "tta", "wavpack", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be",
		"pcm_s32le", "pcm_s32be", "pcm_f32le", "pcm_f64le", "pcm_u8", "pcm_alaw", "pcm_mulaw", "wmav1", "wmav2"},
	"mp4": {"aac", "mp3", "ac3", "eac3", "opus", "alac"},
	"mov": {"aac", "mp2", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be",
		"pcm_s32le", "pcm_s32be", "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be", "pcm_u8", "pcm_s8",
		"pcm_alaw", "pcm_mulaw"},
	"webm": {"opus", "vorbis"},
}

// losslessAudio are the codecs whose conversion keeps every sample
// (audioEncoder): PCM of any layout, and the lossless compressors.
var losslessAudio = []string{"pcm_*", "flac", "alac", "tta", "wavpack", "truehd", "mlp", "ape", "shorten", "tak"}

// Subtitle codecs by kind.
var (
	textSubtitles   = []string{"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
	bitmapSubtitles = []string{"dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"}
)

func codecIn(codec string, list []string) bool {
	for _, c := range list {
		if c == codec || (strings.HasSuffix(c, "*") && strings.HasPrefix(codec, strings.TrimSuffix(c, "*"))) {
			return true
		}
	}
	return false
}

// planSideStreams decides, for each audio and subtitle stream of src,
// whether the output in container copies it, converts it, or drops it.
func planSideStreams(src SourceInfo, container string) (SideStreams, error) {
	if container != "matroska" && videoCodecsFor[container] == nil {
		return SideStreams{}, fmt.Errorf("%w: unknown container %q", ErrIncompatible, container)
	}
	plan := SideStreams{Container: container}
	drop := func(s StreamInfo, why string) {
		plan.Dropped = append(plan.Dropped, fmt.Sprintf("stream %d (%s %s): %s", s.Index, s.Type, s.Codec, why))
	}
	// Of a broadcast's programmes, the video's: another's sound or
	// subtitles do not go with its pictures.
	ours := func(s StreamInfo) bool {
		if v := src.Video.Program; v != 0 && s.Program != 0 && s.Program != v {
			drop(s, fmt.Sprintf("it belongs to programme %d, the video to programme %d", s.Program, v))
			plan.Left = append(plan.Left, s.Index)
			return false
		}
		return true
	}
	for _, a := range src.Audio {
		if !ours(a) {
			continue
		}
		if a.Codec == "" {
			drop(a, "unknown codec")
			continue
		}
		s := SideStream{SourceIndex: a.Index, Type: "audio", Codec: a.Codec}
		if !codecIn(a.Codec, audioCodecsFor[container]) {
			s.Encoder, s.Bitrate = audioEncoder(container, a.Codec, a.Channels)
		}
		plan.Streams = append(plan.Streams, s)
	}
	for _, o := range src.Other {
		if o.Type != "video" && !ours(o) {
			continue
		}
		if o.Type == "data" && o.Timecode != "" {
			continue // a timecode track: the output has the video's timecode (Presentation.Video.Timecode)
		}
		if o.Type != "subtitle" {
			drop(o, o.Type+" streams are not carried")
			continue
		}
		text, bitmap := codecIn(o.Codec, textSubtitles), codecIn(o.Codec, bitmapSubtitles)
		s := SideStream{SourceIndex: o.Index, Type: "subtitle", Codec: o.Codec}
		switch {
		case container == "matroska" && o.Codec == "mov_text":
			s.Encoder = "srt" // Matroska cannot hold mov_text
		case container == "matroska" && (text || bitmap):
		case (container == "mp4" || container == "mov") && text:
			s.Encoder = "mov_text"
		case container == "webm" && text:
			if o.Codec != "webvtt" {
				s.Encoder = "webvtt"
			}
		case bitmap:
			drop(o, container+" cannot carry bitmap subtitles")
			continue
		default:
			drop(o, "subtitle codec not carried")
			continue
		}
		plan.Streams = append(plan.Streams, s)
	}
	return plan, nil
}

// audioEncoder picks the encoder and bitrate for audio in codec that the
// container cannot carry: lossless audio stays lossless where the
// container allows (FLAC in Matroska, ALAC in MP4 and MOV; no bitrate);
// the rest, and anything in WebM, becomes AAC at 80 kb/s per channel
// (Matroska, MP4, MOV) or Opus at 64 kb/s per channel (WebM), at most
// 512 kb/s; an unknown channel count counts as 2.
func audioEncoder(container, codec string, channels int) (encoder, bitrate string) {
	if codecIn(codec, losslessAudio) {
		switch container {
		case "matroska":
			return "flac", ""
		case "mp4", "mov":
			return "alac", ""
		}
	}
	if channels <= 0 {
		channels = 2
	}
	encoder, per := "aac", 80
	if container == "webm" {
		encoder, per = "libopus", 64
	}
	return encoder, strconv.Itoa(min(per*channels, 512)) + "k"
}

// encodedCodecs are the codecs, by ffprobe's names, that SideStream
// encoders write.
var encodedCodecs = map[string]string{
	"aac": "aac", "libopus": "opus", "flac": "flac", "alac": "alac",
	"mov_text": "mov_text", "webvtt": "webvtt", "srt": "subrip",
}

// encoderDelays are the samples an audio encoder gives before the first
// it is given (its priming), by encoder: a container may mark them as not
// to be played (MP4's edit list, Matroska's CodecDelay for Opus) or not
// (Matroska for AAC), but they come before the source's sound either way.
var encoderDelays = map[string]int{"aac": 1024, "libopus": 312}

// OutputCodec is the codec, by ffprobe's name, the stream has in the
// output: its own when copied, its encoder's when converted.
func (s SideStream) OutputCodec() string {
	if s.Encoder == "" {
		return s.Codec
	}
	return cmp.Or(encodedCodecs[s.Encoder], s.Encoder)
}

// audioStart is when the source's sound begins in out, the track this
// stream became in the output, played at sampleRate: see copyStart for a
// copy (src is the source's track); a converted stream's first packet
// comes its encoder's delay before it, and its sound the source decoder's
// delay after the source's first packet. False when it cannot be told.
func (s SideStream) audioStart(src, out audioTrack, sampleRate int) (float64, bool) {
	if s.Encoder == "" {
		return copyStart(src, out)
	}
	if math.IsNaN(out.FirstPacket) || sampleRate <= 0 {
		return 0, false
	}
	return out.FirstPacket + float64(encoderDelays[s.Encoder])/float64(sampleRate) - s.DecodeDelay, true
}

// CheckCodecs compares the output's audio and subtitle tracks (out, as
// ProbePresentation read the output Join wrote) with the plan: each
// stream must be there, in its place, in the codec the plan gives it. A
// track ffprobe reads as another codec, or as none, is a problem: a muxer
// wrote what it holds no tag for.
func (p SideStreams) CheckCodecs(out Presentation) []string {
	var problems []string
	for i, s := range p.Streams {
		at := slices.IndexFunc(out.Tracks, func(t TrackPresentation) bool { return t.Index == 1+i })
		got := "nothing"
		if at >= 0 {
			got = cmp.Or(out.Tracks[at].Codec, "a codec ffmpeg does not know")
		}
		if want := s.OutputCodec(); at < 0 || out.Tracks[at].Codec != want {
			problems = append(problems, fmt.Sprintf("the output's stream %d (the source's %s stream %d, %s) is %s, not %s",
				1+i, s.Type, s.SourceIndex, s.Codec, got, want))
		}
	}
	return problems
}

// PlanSideStreams plans how the output in container (as ContainerFor
// returns it) carries src's audio and subtitle streams (see SideStreams):
// Join maps them straight from the source, stream-copied, or converted
// once where the container cannot carry them (Vorbis or PCM in MP4, AAC in
// WebM, mov_text in Matroska, ...). Reading them from the source itself,
// rather than from an intermediate file, is what keeps their offsets: an
// AAC track's priming and an edit list's start, or an Opus track's
// pre-skip, survive one remux but not two. For MP4 and MOV, whose muxer
// drops a track with no packets, it counts the side streams' packets (one
// read of the source's packets) and leaves the empty ones out (Left). From
// an MP4 or MOV source it reads the audio's packets and converts the
// tracks an edit list cuts midway (decodeRecut). A source with nothing to
// carry gives SideStreams with an empty Path.
func PlanSideStreams(ctx context.Context, tools Tools, src SourceInfo, container string) (SideStreams, error) {
	plan, err := planSideStreams(src, container)
	if err != nil {
		return SideStreams{}, fmt.Errorf("plan side streams: %w", err)
	}
	if len(plan.Streams) == 0 {
		return plan, nil
	}
	if src.Path == "" {
		return SideStreams{}, errors.New("plan side streams: the source has no path (use Probe)")
	}
	if slices.Contains(dropsEmptyTracks, container) {
		if err := plan.leaveOutEmpty(ctx, tools, src.Path); err != nil {
			return SideStreams{}, fmt.Errorf("plan side streams: %w", err)
		}
		if len(plan.Streams) == 0 {
			return plan, nil
		}
	}
	if strings.HasPrefix(src.FormatName, "mov,") {
		if err := plan.decodeRecut(ctx, tools, src); err != nil {
			return SideStreams{}, fmt.Errorf("plan side streams: %w", err)
		}
	}
	for i, s := range plan.Streams {
		if s.Type != "audio" || s.Encoder == "" {
			continue
		}
		if plan.Streams[i].DecodeDelay, err = decodeDelay(ctx, tools, src.Path, s.SourceIndex); err != nil {
			return SideStreams{}, fmt.Errorf("plan side streams: stream %d: %w", s.SourceIndex, err)
		}
	}
	plan.Path = src.Path
	return plan, nil
}

// decodeDelayPackets bounds the packets decodeDelay reads: more than any
// decoder holds back before its first sound.
const decodeDelayPackets = 64

// decodeDelay is how much later the first sound of stream index of the
// file at abs comes out of its decoder than its first played packet's
// timestamp says (SideStream.DecodeDelay); 0 when either is not known.
func decodeDelay(ctx context.Context, tools Tools, abs string, index int) (float64, error) {
	var rep struct {
		Items []struct {
			Type  string `json:"type"`
			PTS   string `json:"pts_time"`
			Flags string `json:"flags"`
		} `json:"packets_and_frames"`
	}
	if err := runProbe(ctx, tools, abs, &rep, ffmpeg.KwArgs{
		"select_streams": strconv.Itoa(index),
		"read_intervals": "%+#" + strconv.Itoa(decodeDelayPackets),
		"show_entries":   "packet=pts_time,flags:frame=pts_time",
	}); err != nil {
		return 0, fmt.Errorf("decode the first sound: %w", err)
	}
	packet, frame := math.NaN(), math.NaN()
	for _, it := range rep.Items {
		t, err := strconv.ParseFloat(it.PTS, 64)
		if err != nil {
			continue // N/A
		}
		switch {
		case it.Type == "packet" && math.IsNaN(packet) && !strings.Contains(it.Flags, "D"):
			packet = t
		case it.Type == "frame" && math.IsNaN(frame):
			frame = t
		}
	}
	if d := frame - packet; d > 0 {
		return d, nil
	}
	return 0, nil // NaN or none: the decoder keeps the packets' times
}

// decodeRecut converts the copied audio streams of src that an edit list
// cuts midway (audioTrack.Recut): Join would copy the next edit's
// pre-roll, timestamps going back, and the muxer refuse it; decoded, it
// is dropped and the edits play one after the other.
func (p *SideStreams) decodeRecut(ctx context.Context, tools Tools, src SourceInfo) error {
	tracks, err := audioTracks(ctx, tools, src.Path)
	if err != nil {
		return fmt.Errorf("read audio packets: %w", err)
	}
	for i, s := range p.Streams {
		t, ok := audioTrackOf(tracks, s.SourceIndex)
		if s.Type != "audio" || s.Encoder != "" || !ok || !t.Recut {
			continue
		}
		channels := 0
		if a := slices.IndexFunc(src.Audio, func(a StreamInfo) bool { return a.Index == s.SourceIndex }); a >= 0 {
			channels = src.Audio[a].Channels
		}
		p.Streams[i].Encoder, p.Streams[i].Bitrate = audioEncoder(p.Container, s.Codec, channels)
	}
	return nil
}

// leaveOutEmpty moves the streams of the file at abs that have no packets
// from the plan's Streams to Left (and Dropped, saying why).
func (p *SideStreams) leaveOutEmpty(ctx context.Context, tools Tools, abs string) error {
	var rep struct {
		Streams []struct {
			Index   int    `json:"index"`
			Packets string `json:"nb_read_packets"`
		} `json:"streams"`
	}
	if err := runProbe(ctx, tools, abs, &rep, ffmpeg.KwArgs{"count_packets": "", "show_entries": "stream=index,nb_read_packets"}); err != nil {
		return fmt.Errorf("count packets: %w", err)
	}
	empty := map[int]bool{}
	for _, s := range rep.Streams {
		empty[s.Index] = s.Packets == "" || s.Packets == "0" // ffprobe leaves out a count of none
	}
	kept := p.Streams[:0]
	for _, s := range p.Streams {
		if !empty[s.SourceIndex] {
			kept = append(kept, s)
			continue
		}
		p.Left = append(p.Left, s.SourceIndex)
		p.Dropped = append(p.Dropped, fmt.Sprintf("stream %d (%s %s): it has no packets, and %s leaves out an empty track",
			s.SourceIndex, s.Type, s.Codec, strings.ToUpper(p.Container)))
	}
	p.Streams = kept
	return nil
}

// Without is s less the audio and other streams whose indexes are listed:
// the source as an output that leaves them out should carry it.
func (s SourceInfo) Without(indexes []int) SourceInfo {
	keep := func(st StreamInfo) bool { return !slices.Contains(indexes, st.Index) }
	var audio, other []StreamInfo
	for _, a := range s.Audio {
		if keep(a) {
			audio = append(audio, a)
		}
	}
	for _, o := range s.Other {
		if keep(o) {
			other = append(other, o)
		}
	}
	s.Audio, s.Other = audio, other
	return s
}

// WithoutTracks is p less the tracks whose source indexes are listed.
func (p Presentation) WithoutTracks(indexes []int) Presentation {
	var tracks []TrackPresentation
	for _, t := range p.Tracks {
		if !slices.Contains(indexes, t.Index) {
			tracks = append(tracks, t)
		}
	}
	p.Tracks = tracks
	return p
}

// Shard is an encoded chunk, fetched to a local file, for Join.
type Shard struct {
	// Path is the local file: Matroska, WebM or MP4/MOV holding the encoded
	// video of one chunk, every frame of it, timestamps passed through. All
	// shards of a Join must be alike (same container, codec and time base,
	// as a fleet of workers configured the same writes them): the concat
	// demuxer takes every file's time base to be the first's.
	Path string
	// Duration is the chunk's Duration: where the next shard starts, in
	// seconds after this one. 0 lets ffmpeg take the shard's own duration,
	// which Matroska's millisecond timestamps make drift over many shards.
	Duration float64
}

// Join writes outPath: the shards' video, concatenated in order without
// re-encoding, with side's streams muxed in once, in the container
// ContainerFor(outPath) names.
//
// Each shard is placed Shard.Duration after the previous one, so the joined
// video keeps the source's timestamps (to the millisecond of Matroska) and
// its length; the video and the side streams keep the source's offset from
// each other. An MP4 or MOV output whose source's pictures lie on a grid
// the shards' milliseconds lost (pictureGrid: 29.97 fps, 1/90000 ticks)
// gets the source's times and offset exactly, on the source's time scale:
// its video is first written whole to a temporary file beside outPath,
// as large as the video. Audio and subtitles marked with an Encoder are converted;
// everything else is stream-copied. The first shard's video codec is
// checked with CheckCompatible first (an error wraps ErrIncompatible).
//
// The output presents the video as the source does, as far as the
// container can carry it (see presentation.go): Join reads the source's
// presentation (ProbePresentation of src.Path, so the source must still be
// there) and the first shard's, writes the source's container metadata and
// chapters, every stream's dispositions and the video's language and title,
// the rotation in MP4 and MOV, and any colour property or sample aspect
// ratio the shards lost. What it cannot put back, ComparePresentation of
// the source and the output names.
//
// The output is written to a temporary file beside outPath, synced, and
// renamed over it, and the directory synced: outPath is either untouched or
// complete. On every error, a cancelled ctx included (the error then wraps
// ctx.Err()), the temporary files are removed.
func Join(ctx context.Context, tools Tools, src SourceInfo, shards []Shard, side SideStreams, outPath string) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	container, err := ContainerFor(outPath)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if side.Path != "" && side.Container != container {
		return fmt.Errorf("join: the side streams were planned for %s, the output is %s", side.Container, container)
	}
	if len(shards) == 0 {
		return errors.New("join: no shards")
	}
	paths := make([]string, len(shards))
	for i, s := range shards {
		if paths[i], err = checkShard(s); err != nil {
			return fmt.Errorf("join: shard %d: %w", i, err)
		}
	}
	if src.Path == "" {
		return errors.New("join: the source has no path (use Probe)")
	}
	// Side by side: each probe is mostly ffprobe starting up.
	var shardP, srcP Presentation
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		if shardP, err = ProbeEncodedPresentation(gctx, tools, paths[0], src.Video.Width, src.Video.Height); err != nil {
			return fmt.Errorf("join: shard %s: %w", paths[0], err)
		}
		return nil
	})
	g.Go(func() (err error) {
		if srcP, err = ProbePresentation(gctx, tools, src.Path); err != nil {
			return fmt.Errorf("join: source: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if err := CheckCompatible(container, shardP.Video.Codec); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	outAbs, err := filepath.Abs(outPath)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	dir, base := filepath.Split(outAbs)

	list, err := writeConcatList(dir, base, paths, shards)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	defer os.Remove(list)
	meta, err := writeFFMetadata(dir, base, srcP, src.StartTime)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	defer os.Remove(meta)

	video := joinVideo{path: list}
	if grid, ok := pictureGrid(src); ok && (container == "mp4" || container == "mov") {
		// MP4 and MOV keep the source's ticks, which the shards' Matroska
		// rounded to the millisecond: their video is first written on the
		// source's time scale, then snapped back to the grid (setts cannot
		// change a stream's time base itself, and the concatenation's is
		// the shards').
		onScale, err := writeTemp(dir, "."+base+".*.video", "")
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		defer os.Remove(onScale)
		if err := runFFmpeg(ctx, tools, concatCommand(list, container, grid, onScale)); err != nil {
			return fmt.Errorf("join %s: %w", outPath, err)
		}
		video = joinVideo{path: onScale, grid: grid}
	}

	tmp, err := writeTemp(dir, "."+base+".*.tmp", "")
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()

	if err := runFFmpeg(ctx, tools, joinCommand(src, video, meta, side, container, tmp, srcP, shardP)); err != nil {
		return fmt.Errorf("join %s: %w", outPath, err)
	}
	if err := fsutil.SyncFile(tmp); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := os.Rename(tmp, outAbs); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	return nil
}

// concatInput is the input options of the shards' concat list: the list
// names absolute paths, checked by checkShard, and the shards get their
// own whitelist in the list.
func concatInput() ffmpeg.KwArgs {
	return ffmpeg.KwArgs{"f": "concat", "safe": "0", "protocol_whitelist": "file", "format_whitelist": "concat"}
}

// joinVideo is the video Join muxes: the shards' concat list, or, with a
// grid, the file concatCommand wrote on the grid's time scale, whose
// timestamps the join snaps to it.
type joinVideo struct {
	path string
	grid timeGrid
}

// concatCommand builds the command line that writes the shards' video on
// grid's time scale, in the output's container:
//
//	-f concat ... -i LIST -map 0:v:0 -c copy -video_track_timescale SCALE -f CONTAINER TMP
func concatCommand(list, container string, grid timeGrid, tmp string) *ffmpeg.Stream {
	return ffmpeg.Input("file:"+list, concatInput()).Get("v:0").Output("file:"+tmp, ffmpeg.KwArgs{
		"c": "copy", "video_track_timescale": strconv.FormatInt(grid.scale, 10), "f": container,
	})
}

// joinCommand builds the ffmpeg command line of Join:
//
//	-f concat -safe 0 -protocol_whitelist file -format_whitelist concat
//	  [-itsoffset V] -i LIST
//	[-protocol_whitelist file -format_whitelist matroska [-itsoffset A] -i SIDE]
//	-f ffmetadata -protocol_whitelist file -format_whitelist ffmetadata -i META
//	-map 0:v:0 [-map 1:0 -map 1:1 ...] -map M:s? -c copy [-c:N ENC -b:N RATE ...]
//	-map_metadata M -map_chapters M [presentation options] [-movflags +faststart]
//	-f CONTAINER TMP
//
// ffmpeg moves each input to start at zero, then adds -itsoffset: V and A
// put the video and the side streams back where they were relative to the
// source's start. META (input M) holds the source's container metadata and
// chapters (writeFFMetadata); "-map M:s?" maps nothing, it only makes the
// input part of the command. The presentation options are
// presentationOutput's.
//
// A video on a grid (see joinVideo) is read from its file instead of LIST,
// kept on the grid's time scale (-video_track_timescale), and its
// timestamps snapped to the grid by a setts filter ahead of any other.
func joinCommand(src SourceInfo, video joinVideo, meta string, side SideStreams, container, tmp string, srcP, shardP Presentation) *ffmpeg.Stream {
	videoIn := concatInput()
	if video.grid.scale > 0 {
		videoIn = ffmpeg.KwArgs{"protocol_whitelist": "file", "format_whitelist": "mov"}
	}
	if off := startOffset(src, src.Video.StartTime); off > 0 {
		videoIn["itsoffset"] = formatSeconds(off)
	}
	streams := []*ffmpeg.Stream{ffmpeg.Input("file:"+video.path, videoIn).Get("v:0")}
	out := ffmpeg.KwArgs{"c": "copy", "f": container}
	metaIndex := 1
	if side.Path != "" {
		metaIndex = 2
		// The source on its own timeline: ffmpeg moves it by its start
		// (src.StartTime), as it moves the video by -itsoffset above.
		// Packets the demuxer flags corrupt (a damaged capture's audio) are
		// left out, as a player drops them: -xerror, there for the shards,
		// would otherwise end the join at the first.
		in := ffmpeg.Input("file:"+side.Path, ffmpeg.KwArgs{"protocol_whitelist": "file", "fflags": "+discardcorrupt"})
		// An MP4/MOV edit list hides the packets before the start (an
		// -ss cut's pre-roll from the keyframe before it): Matroska and
		// WebM cannot, so those wholly before it are left out of a copy,
		// and the packet across the start kept.
		dropPreroll := strings.HasPrefix(src.FormatName, "mov,") && (container == "matroska" || container == "webm")
		for i, s := range side.Streams {
			streams = append(streams, in.Get(strconv.Itoa(s.SourceIndex)))
			if s.Encoder != "" {
				out["c:"+strconv.Itoa(1+i)] = s.Encoder
			} else if dropPreroll {
				out["bsf:"+strconv.Itoa(1+i)] = `noise=drop=lt(pts+duration\,0)`
			}
			if s.Bitrate != "" {
				out["b:"+strconv.Itoa(1+i)] = s.Bitrate
			}
		}
	}
	metaIn := ffmpeg.KwArgs{"f": "ffmetadata", "protocol_whitelist": "file", "format_whitelist": "ffmetadata"}
	streams = append(streams, ffmpeg.Input("file:"+meta, metaIn).Get("s?"))
	out["map_metadata"] = strconv.Itoa(metaIndex)
	out["map_chapters"] = strconv.Itoa(metaIndex)
	presentationOutput(srcP, shardP, side, container, out)
	if g := video.grid; g.scale > 0 {
		// The movie's scale too: an edit list that starts the video late
		// (after the audio) counts in it.
		out["video_track_timescale"] = strconv.FormatInt(g.scale, 10)
		out["movie_timescale"] = strconv.FormatInt(g.scale, 10)
		bsf := g.setts()
		if more, ok := out["bsf:v:0"].(string); ok {
			bsf += "," + more
		}
		out["bsf:v:0"] = bsf
	}
	if container == "mp4" || container == "mov" {
		out["movflags"] = "+faststart"
	}
	return ffmpeg.Output(streams, "file:"+tmp, out)
}

// startOffset is t measured from the source's start; 0 for an unknown t
// (+Inf).
func startOffset(src SourceInfo, t float64) float64 {
	if math.IsInf(t, 0) {
		return 0
	}
	return t - src.StartTime
}

func formatSeconds(s float64) string { return strconv.FormatFloat(s, 'f', 6, 64) }

// checkShard returns the shard's absolute path after checking that it is a
// regular file whose name the concat list can hold.
func checkShard(s Shard) (string, error) {
	if s.Path == "" {
		return "", errors.New("empty path")
	}
	if strings.ContainsAny(s.Path, "\n\r\x00") {
		return "", fmt.Errorf("path %q has a line break", s.Path)
	}
	if s.Duration < 0 || math.IsNaN(s.Duration) || math.IsInf(s.Duration, 0) {
		return "", fmt.Errorf("bad duration %v", s.Duration)
	}
	abs, err := filepath.Abs(s.Path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", abs)
	}
	return abs, nil
}

// writeConcatList writes the concat demuxer's script for paths beside the
// output and returns its name. Each file may only be opened as one of
// shardFormats, and is placed its shard's Duration after the previous one.
func writeConcatList(dir, base string, paths []string, shards []Shard) (string, error) {
	var b strings.Builder
	b.WriteString("ffconcat version 1.0\n")
	for i, p := range paths {
		fmt.Fprintf(&b, "file %s\n", concatQuote("file:"+p))
		fmt.Fprintf(&b, "option format_whitelist %s\n", shardFormats)
		if d := shards[i].Duration; d > 0 {
			fmt.Fprintf(&b, "duration %s\n", formatSeconds(d))
		}
	}
	return writeTemp(dir, "."+base+".*.concat", b.String())
}

// writeTemp writes content to a new file in dir named after pattern (as
// os.CreateTemp takes it) and returns its name; on error nothing is left.
func writeTemp(dir, pattern, content string) (name string, err error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(f.Name())
			name = ""
		}
	}()
	if _, err := f.WriteString(content); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// concatQuote quotes s for the concat demuxer (ffmpeg's av_get_token): in
// single quotes everything is literal, and a single quote inside is closed,
// escaped and reopened:
//
//	it's  ->  'it'\''s'
func concatQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
