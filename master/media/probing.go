package media

import (
	"context"
	"sync"
)

// Probing is a source being probed (StartProbe): its streams and packets
// known, its pictures decoding. Its methods are safe for concurrent use.
type Probing struct {
	path string
	info SourceInfo // the streams and packets; no pictures

	mu   sync.Mutex
	pics pictureScan // the pictures decoded so far
	// fields are the field modes of the first fieldsKnown pictures, from
	// the decode's log, which comes apart from its pictures: only the
	// pictures of both are handed out (pictures).
	fields      []fieldRun
	fieldsKnown int
	grew        chan struct{} // closed, and replaced, when pictures arrive or the decode ends
	done        chan struct{} // closed when the decode has ended
	result      SourceInfo    // once done: what Probe gives
	err         error         // once done: why Probe fails
}

// Probed is a Probing that is done: src, as Probe made it.
func Probed(src SourceInfo) *Probing {
	p := &Probing{path: src.Path, info: src, grew: make(chan struct{}), done: make(chan struct{}), result: src}
	if src.pictures != nil {
		p.fields = src.pictures.log.fields // for CheckFields
	}
	close(p.grew)
	close(p.done)
	return p
}

// Info is what is known of the source before its pictures are: its path,
// streams and container, and its video's codec, size, rate and pixel
// format. Frames, Duration and the video's StartTime come with Wait.
func (p *Probing) Info() SourceInfo {
	info := p.info
	info.pictures = nil
	return info
}

// Started waits until the decode has given its first pictures, or ended;
// it returns Probe's error if the decode ended in one (a source without
// a picture to encode is refused that soon).
func (p *Probing) Started(ctx context.Context) error {
	for {
		pics, _, _, done, grew := p.pictures()
		if done {
			return p.err
		}
		if len(pics) >= 2 {
			return nil
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Done reports whether the decode has ended.
func (p *Probing) Done() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the decode to end and returns what Probe returns.
func (p *Probing) Wait(ctx context.Context) (SourceInfo, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return SourceInfo{}, ctx.Err()
	}
	return p.result, p.err
}

// decode runs the ground-truth decode, publishing pictures as they come.
func (p *Probing) decode(ctx context.Context, tools Tools) {
	var log decodeLog // written by the decode's stderr, read once it is over
	log.onPicture = p.logged
	err := decodePicturesTo(ctx, tools, p.info.Path, p.info.Video.Index, "", 0, nil, p, &log)
	// Damage a frame-threaded decoder concealed may be concealed otherwise
	// by the next decode: the ground truth is decoded again on one thread,
	// as every decode compared with it then is (SourceInfo.OneThread).
	var again *pictureScan
	if err == nil && log.damaged() {
		again = &pictureScan{}
		if err = decodePicturesTo(ctx, tools, p.info.Path, p.info.Video.Index, "", 0, oneThread, again, &again.log); err == nil {
			err = again.finish()
		}
	}
	p.mu.Lock()
	p.pics.log = log
	defer p.mu.Unlock()
	if err == nil {
		err = p.pics.finish()
	}
	scan := p.pics // the pictures are never changed once published
	if again != nil {
		scan = *again
	}
	p.result, p.err = finish(p.path, p.info, &scan, err)
	p.result.OneThread = again != nil && p.err == nil
	close(p.done)
	close(p.grew)
}

// Write takes ffmpeg's framehash output (see pictureScan.Write).
func (p *Probing) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.known()
	p.pics.Write(b)
	p.grown(n)
	return len(b), nil
}

// logged takes the field mode of the next picture the decode logged.
func (p *Probing) logged(mode byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.known()
	p.fields = appendField(p.fields, mode, p.fieldsKnown)
	p.fieldsKnown++
	p.grown(n)
}

// known is how many pictures are known whole: their hash and field mode.
func (p *Probing) known() int { return min(len(p.pics.pictures), p.fieldsKnown) }

// grown tells the waiters when more than n pictures are known.
func (p *Probing) grown(n int) {
	if p.known() > n {
		close(p.grew)
		p.grew = make(chan struct{})
	}
}

// pictures returns the pictures decoded so far (a prefix of the
// source's, never changed after) and their field modes, their time base,
// whether the decode has ended, and a channel closed when there are more.
func (p *Probing) pictures() (pics []picture, fields []fieldRun, tb rational, done bool, grew <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		done = true
	default:
	}
	n := p.known()
	// Runs are only ever appended, as the pictures are.
	f := len(p.fields)
	for f > 0 && p.fields[f-1].index >= n {
		f--
	}
	return p.pics.pictures[:n:n], p.fields[:f:f], p.pics.timeBase, done, p.grew
}
