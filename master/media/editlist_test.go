package media_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// edit is one entry of an MP4 edit list: show Duration (in the movie's
// timescale) of the media from MediaTime seconds on.
type edit struct {
	Duration  uint32
	MediaTime float64
}

// mp4Box is one box of an MP4 file: its type and whole bytes.
type mp4Box struct {
	kind string
	data []byte
}

// mp4Boxes splits b into its boxes (32-bit sizes only, as ffmpeg writes
// small files).
func mp4Boxes(t *testing.T, b []byte) []mp4Box {
	t.Helper()
	var boxes []mp4Box
	for len(b) >= 8 {
		size := binary.BigEndian.Uint32(b)
		if size < 8 || int(size) > len(b) {
			t.Fatalf("MP4 box of %d bytes in %d", size, len(b))
		}
		boxes = append(boxes, mp4Box{string(b[4:8]), b[:size]})
		b = b[size:]
	}
	return boxes
}

func mp4Pack(kind string, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte(nil), uint32(8+len(body))), append([]byte(kind), body...)...)
}

// rewriteEditLists copies the MP4 at in to out with the edit list of each
// track whose handler (vide, soun) edits names replaced: what an editor's
// cut, or QuickTime's trim, writes. ffmpeg writes one edit at most. The
// moov must come after the mdat (no faststart), so no offset moves.
func rewriteEditLists(t *testing.T, in, out string, edits map[string][]edit) {
	t.Helper()
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var file []byte
	for _, top := range mp4Boxes(t, data) {
		if top.kind != "moov" {
			file = append(file, top.data...)
			continue
		}
		var moov []byte
		for _, b := range mp4Boxes(t, top.data[8:]) {
			if b.kind == "trak" {
				b.data = withEditList(t, b.data, edits)
			}
			moov = append(moov, b.data...)
		}
		file = append(file, mp4Pack("moov", moov)...)
	}
	if err := os.WriteFile(out, file, 0o644); err != nil {
		t.Fatal(err)
	}
}

func withEditList(t *testing.T, trak []byte, edits map[string][]edit) []byte {
	at := bytes.Index(trak, []byte("hdlr"))
	mdhd := bytes.Index(trak, []byte("mdhd"))
	if at < 0 || mdhd < 0 {
		t.Fatal("trak without hdlr or mdhd")
	}
	list, ok := edits[string(trak[at+12:at+16])]
	if !ok {
		return trak
	}
	scaleAt := mdhd + 16 // version 0: after version, flags, two 32-bit times
	if trak[mdhd+4] == 1 {
		scaleAt = mdhd + 24
	}
	timescale := float64(binary.BigEndian.Uint32(trak[scaleAt:]))
	elst := binary.BigEndian.AppendUint32(nil, 0) // version, flags
	elst = binary.BigEndian.AppendUint32(elst, uint32(len(list)))
	for _, e := range list {
		elst = binary.BigEndian.AppendUint32(elst, e.Duration)
		elst = binary.BigEndian.AppendUint32(elst, uint32(int32(math.Round(e.MediaTime*timescale))))
		elst = binary.BigEndian.AppendUint32(elst, 0x10000) // rate 1.0
	}
	edts := mp4Pack("edts", mp4Pack("elst", elst))
	var body []byte
	for _, b := range mp4Boxes(t, trak[8:]) {
		if b.kind == "edts" {
			continue
		}
		body = append(body, b.data...)
		if b.kind == "tkhd" {
			body = append(body, edts...)
		}
	}
	return mp4Pack("trak", body)
}

// TestJoin_EditListCutMidway: an MP4 whose edit lists show media 0-2 s,
// then 3.4-5.4 s (a cut in the middle). ffmpeg gives the second edit's
// audio pre-roll as packets flagged discard, their timestamps going back:
// copied, the muxer refused them ("Non-monotonous DTS"). The audio is
// decoded instead, so the edits play one after the other.
func TestJoin_EditListCutMidway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.mp4")
	ffmpegT(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=6", "-f", "lavfi", "-i", "sine=f=440:d=6:r=48000:beep_factor=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0", "-c:a", "aac", "-use_editlist", "1", base)
	cut := filepath.Join(dir, "cut.mp4")
	// Movie timescale 1000: two edits of 2 s each; the audio's first
	// edit skips AAC's priming (1024 samples).
	rewriteEditLists(t, base, cut, map[string][]edit{
		"vide": {{2000, 0}, {2000, 3.4}},
		"soun": {{2000, 1024.0 / 48000}, {2000, 3.4 + 1024.0/48000}},
	})
	src := mustProbe(t, cut)
	if src.Video.Frames != 100 {
		t.Fatalf("the cut source has %d pictures, want 100", src.Video.Frames)
	}
	shards := encodeShards(t, mustSplit(t, src, 1), x264Args)
	for _, name := range []string{"out.mkv", "out.mp4"} {
		out := filepath.Join(t.TempDir(), name)
		side := joinTo(t, src, shards, out)
		if len(side.Streams) != 1 || side.Streams[0].Encoder == "" {
			t.Errorf("%s: plan %+v, want the audio converted", name, side.Streams)
		}
		v := mustVerify(t, src, out)
		if len(v.AudioOutput) != 1 || math.Abs(v.AudioOutput[0].Length-4) > 0.05 {
			t.Errorf("%s: audio %+v, want 4 s of sound", name, v.AudioOutput)
		}
	}
}
