package media

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/videoshard/videoshard/internal/fftool"
)

// ErrSizeChange: the source's pictures change size and shape midway (two
// captures run together, a broadcast switching programmes). An encode
// holds one picture size, so ffmpeg would scale the later pictures to the
// first size and the output would show them out of shape; the source is
// refused instead, with the sizes. (A change of size that keeps the shape
// is scaled, and warned of.)
var ErrSizeChange = errors.New("the video's picture size changes midway")

// decodeLogArgs start the command line of a decode whose log a decodeLog
// reads: errors as with -v error, and besides them, each line tagged with
// its level, the verbose lines that say what each filter graph was set up
// for, and the warnings that say what was damaged.
var decodeLogArgs = []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+verbose", "-y"}

// decodeLog reads the log of a decode run with decodeLogArgs: the picture
// formats its filter graph was configured for, in order (ffmpeg 5.1
// configures it anew when the pictures change size or pixel format; not
// for a change of pixel aspect alone), and the
// damage ffmpeg reported and concealed. Of the log it keeps only errors,
// for a failure's message, as -v error would have printed them.
type decodeLog struct {
	// formats are the graph's formats, each other than the one before.
	formats []pictureFormat
	// corruptPictures and corruptPackets count what ffmpeg flagged as
	// damaged; firstError is the first error the decoder logged.
	corruptPictures, corruptPackets int
	// lostPackets counts packets the decoder could make nothing of.
	lostPackets int
	firstError  string
	// onSizeChange, when set, is called once, when the pictures are seen
	// to change size and shape (sizeChange): the decode need not go on.
	onSizeChange func()
	// pts are the pictures' timestamps as the decoder gave them, in
	// order, from showinfo's log (noPTS for none).
	pts []int64
	// colours are the colour descriptions the pictures came with, each
	// other than the one before, with the picture each begins at.
	colours []pictureColour
	// colourOf holds the properties of the last picture's colour line
	// read so far (fftool.ColourProperties' order): the line may come in
	// pieces.
	colourOf [len(fftool.ColourProperties)]string
	// fields are the pictures' runs of one field mode (see fieldRun): one
	// run when they never switch.
	fields []fieldRun
	// onPicture, when set, is called with each picture's field mode as it
	// is logged: for a caller that reads the log while the decode runs.
	onPicture func(fields byte)
}

// pictureFormat is what a decode's filter graph was set up for, or what a
// picture came in.
type pictureFormat struct {
	width, height int
	pixFmt, sar   string
}

// pictureColour is a picture's colour description, as showinfo logs it:
// "color_range:tv color_space:bt709 color_primaries:bt709 color_trc:bt709",
// from the picture at index on.
type pictureColour struct {
	desc  string
	index int
}

func (f pictureFormat) size() string { return fmt.Sprintf("%dx%d", f.width, f.height) }

// line takes one line of the log (proc.Cmd.StderrLine).
func (l *decodeLog) line(b []byte) []byte {
	component, level, msg := fftool.SplitLogLine(b)
	switch level {
	case "info":
		if !strings.HasPrefix(component, "Parsed_showinfo_") {
			return nil
		}
		switch {
		case strings.HasPrefix(msg, "n:"):
			l.colourOf = [len(fftool.ColourProperties)]string{}
			pts, f := shownPicture(msg)
			l.pts = append(l.pts, pts)
			l.seen(f)
			mode := fftool.ShownFieldMode(msg)
			if mode == 0 {
				mode = progressive
			}
			l.fields = appendField(l.fields, mode, len(l.pts)-1)
			if l.onPicture != nil {
				l.onPicture(mode)
			}
		default:
			fftool.ShownColours(msg, l.colour)
		}
		return nil
	case "verbose":
		if strings.HasPrefix(component, "graph ") && strings.Contains(component, " input from stream ") {
			l.configured(msg)
		}
		return nil
	case "warning":
		switch {
		case strings.Contains(msg, "corrupt decoded frame"):
			l.corruptPictures++
		case strings.Contains(msg, "corrupt input packet"):
			l.corruptPackets++
		}
		return nil
	case "error", "fatal", "panic":
		if strings.HasPrefix(msg, "Error while decoding stream ") {
			l.lostPackets++ // a packet that gave no picture at all
		}
		if l.firstError == "" {
			l.firstError = msg
			if component != "" {
				l.firstError = component + ": " + msg
			}
		}
		// As -v error prints it.
		if component != "" {
			return fmt.Appendf(nil, "[%s] %s", component, msg)
		}
		return []byte(msg)
	}
	return nil
}

// shownPicture reads showinfo's line for a picture, "n:  12 pts: 309600
// pts_time:3.44 pos: 9012 fmt:yuv420p sar:16/11 s:720x576 i:T iskey:0
// type:B": its pts (noPTS for NOPTS or none) and format (its field mode:
// fftool.ShownFieldMode).
func shownPicture(msg string) (pts int64, f pictureFormat) {
	pts = noPTS
	fields := strings.Fields(msg)
	for i := 0; i < len(fields); i++ {
		key, value, _ := strings.Cut(fields[i], ":")
		if value == "" && i+1 < len(fields) && !strings.Contains(fields[i+1], ":") {
			i++ // "pts:" and its right-aligned value
			value = fields[i]
		}
		switch key {
		case "pts":
			if t, err := strconv.ParseInt(value, 10, 64); err == nil {
				pts = t
			}
		case "fmt":
			f.pixFmt = value
		case "sar":
			f.sar = value
		case "s":
			w, h, _ := strings.Cut(value, "x")
			f.width, _ = strconv.Atoi(w)
			f.height, _ = strconv.Atoi(h)
		}
	}
	return pts, f
}

// colour takes one property of the last picture's colour description;
// once all have come, the description is the pictures' from that one on
// if it differs from the one before.
func (l *decodeLog) colour(property, value string) {
	i := slices.Index(fftool.ColourProperties[:], property)
	l.colourOf[i] = value
	if slices.Contains(l.colourOf[:], "") {
		return
	}
	parts := make([]string, len(l.colourOf))
	for i, p := range fftool.ColourProperties {
		parts[i] = strings.TrimPrefix(p, "color_") + ":" + l.colourOf[i]
	}
	l.colourOf = [len(fftool.ColourProperties)]string{}
	desc := strings.Join(parts, " ")
	if n := len(l.colours); n == 0 || l.colours[n-1].desc != desc {
		l.colours = append(l.colours, pictureColour{desc, len(l.pts) - 1})
	}
}

// configured reads a graph input's "w:320 h:240 pixfmt:yuv420p tb:1/90000
// fr:25/1 sar:1/1".
func (l *decodeLog) configured(msg string) {
	var f pictureFormat
	for _, field := range strings.Fields(msg) {
		key, value, _ := strings.Cut(field, ":")
		switch key {
		case "w":
			f.width, _ = strconv.Atoi(value)
		case "h":
			f.height, _ = strconv.Atoi(value)
		case "pixfmt":
			f.pixFmt = value
		case "sar":
			f.sar = value
		}
	}
	l.seen(f)
}

// seen takes the format of the pictures from here on.
func (l *decodeLog) seen(f pictureFormat) {
	if f.sar == "0/1" || f.sar == "" {
		f.sar = "1/1" // unknown: shown square
	}
	if n := len(l.formats); n > 0 && l.formats[n-1] == f {
		return
	}
	l.formats = append(l.formats, f)
	if l.onSizeChange != nil && l.sizeChange() != nil {
		l.onSizeChange()
		l.onSizeChange = nil
	}
}

// sizes lists the picture sizes in the order they came, each once.
func (l *decodeLog) sizes() []string {
	var sizes []string
	for _, f := range l.formats {
		if s := f.size(); !slices.Contains(sizes, s) {
			sizes = append(sizes, s)
		}
	}
	return sizes
}

// sizeChange is ErrSizeChange with the sizes when the pictures change size
// and shape midway; nil when they keep one size, or change size but not
// shape (1440x1080 at 4:3 pixels, then 1920x1080 square: ffmpeg scales
// the later ones to the first size and shape, see warnings).
func (l *decodeLog) sizeChange() error {
	sizes := l.sizes()
	if len(sizes) < 2 || l.sameShape() {
		return nil
	}
	return fmt.Errorf("%w (%s): an encode holds one size, and the pictures would be scaled to %s and shown out of shape; "+
		"cut the source where its size changes, or scale it to one size first", ErrSizeChange, strings.Join(sizes, ", then "), sizes[0])
}

// sameShape reports whether every format the pictures came in is shown in
// the first one's shape (display aspect ratio, within 1%).
func (l *decodeLog) sameShape() bool {
	first := l.formats[0].shape()
	for _, f := range l.formats[1:] {
		if s := f.shape(); first <= 0 || s <= 0 || math.Abs(s-first) > first/100 {
			return false
		}
	}
	return true
}

// shape is the format's display aspect ratio: width over height, times
// the pixels' aspect; 0 when unknown.
func (f pictureFormat) shape() float64 {
	sar, ok := parseRational(strings.ReplaceAll(f.sar, ":", "/"))
	if !ok || f.height <= 0 || sar.den == 0 {
		return 0
	}
	return float64(f.width) * float64(sar.num) / (float64(f.height) * float64(sar.den))
}

// warnings say what of the pictures the output cannot show as the source
// does, and what ffmpeg had to conceal.
func (l *decodeLog) warnings() []string {
	var w []string
	var fmts, sars []string
	for _, f := range l.formats {
		if !slices.Contains(fmts, f.pixFmt) {
			fmts = append(fmts, f.pixFmt)
		}
		if sar := strings.ReplaceAll(f.sar, "/", ":"); !slices.Contains(sars, sar) {
			sars = append(sars, sar)
		}
	}
	if sizes := l.sizes(); len(sizes) > 1 && l.sameShape() {
		w = append(w, fmt.Sprintf("video picture size changes midway (%s): the later pictures are scaled to %s, their shape kept",
			strings.Join(sizes, ", then "), sizes[0]))
	}
	if len(fmts) > 1 {
		w = append(w, fmt.Sprintf("video pixel format changes midway (%s): the later pictures are converted to %s",
			strings.Join(fmts, ", then "), fmts[0]))
	}
	if len(sars) > 1 && !l.sameShape() {
		w = append(w, fmt.Sprintf("video pixel aspect changes midway (%s): the output keeps %s throughout, so the pictures after the change show out of shape",
			strings.Join(sars, ", then "), sars[0]))
	}
	if len(l.colours) > 1 {
		var descs []string
		for _, c := range l.colours {
			if !slices.Contains(descs, c.desc) {
				descs = append(descs, c.desc)
			}
		}
		if len(descs) > 1 {
			w = append(w, fmt.Sprintf("video colour description changes midway (%s; first at picture %d): each chunk is encoded with its first picture's, so a chunk across a change tags the pictures after it with the colours before it",
				strings.Join(descs, ", then "), l.colours[1].index))
		}
	}
	switch {
	case l.lostPackets > 0:
		w = append(w, fmt.Sprintf("damaged source: %d of the video's packets do not decode at all%s, and %d pictures decode with errors ffmpeg conceals; the output has the pictures ffmpeg shows",
			l.lostPackets, l.firstErrorNote(), l.corruptPictures))
	case l.corruptPictures > 0:
		w = append(w, fmt.Sprintf("damaged source: %d of the video's pictures decode with errors ffmpeg conceals%s; the output shows them as ffmpeg does",
			l.corruptPictures, l.firstErrorNote()))
	case l.corruptPackets > 0:
		w = append(w, fmt.Sprintf("damaged source: %d of the video's packets are flagged corrupt%s; the output shows the pictures as ffmpeg decodes them",
			l.corruptPackets, l.firstErrorNote()))
	}
	return w
}

// damaged reports whether the decoder logged an error, concealed damage or
// dropped packets: what a frame-threaded decoder may do otherwise on
// another run. (Whether it flags a picture corrupt may vary too; that it
// met a damaged slice does not.)
func (l *decodeLog) damaged() bool {
	return l.lostPackets > 0 || l.corruptPictures > 0 || l.firstError != ""
}

func (l *decodeLog) firstErrorNote() string {
	if l.firstError == "" {
		return ""
	}
	return fmt.Sprintf(" (first: %q)", l.firstError)
}
