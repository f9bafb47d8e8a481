package grpcapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/videoshard/videoshard/storage"
)

// A ListShards page token is a position in the listing: the last chunk a
// page held, and the video_id the listing was asked for, as
// "1/<video_id>/<last video>/<last index>" in unpadded base64url (opaque
// to clients: the format may change with its version); a listing with
// filters adds a digest of them, as "2/<video_id>/<filters>/<last
// video>/<last index>", so that a token is only taken with the filters it
// was made for. It needs no
// signature: it can only say where in the sorted listing the next page
// starts, and the listing holds only committed chunks of the asked video,
// so a token a client made up reaches nothing a listing from the start
// would not. It is still checked whole, so that a mangled one is refused
// rather than taken for some other position.

const (
	pageTokenVersion         = "1"
	pageTokenFilteredVersion = "2"
	// filterDigestLen is the hex digits of a filter set's digest.
	filterDigestLen = 16
	// maxPageTokenLen bounds a token before it is decoded: the longest one
	// made holds two video ids, a filter digest and an index.
	maxPageTokenLen = 4 * (len(pageTokenVersion) + 2*storage.MaxVideoIDLen + filterDigestLen + 10 + 4) / 3
)

// filterDigest names a filter set in a token; "" for none.
func filterDigest(f storage.Filter) string {
	if f.IsZero() {
		return ""
	}
	var after, before int64
	if !f.ProcessedAfter.IsZero() {
		after = f.ProcessedAfter.Unix()
	}
	if !f.ProcessedBefore.IsZero() {
		before = f.ProcessedBefore.Unix()
	}
	sum := sha256.Sum256([]byte(strconv.Quote(f.VideoCodec) + "/" + strconv.Quote(f.Encoder) + "/" +
		strconv.FormatInt(after, 10) + "/" + strconv.FormatInt(before, 10)))
	return hex.EncodeToString(sum[:filterDigestLen/2])
}

var pageTokenEncoding = base64.RawURLEncoding

// pageToken is the token of the page after last in a listing of video
// ("" for every video) with filter.
func pageToken(video string, filter storage.Filter, last storage.ChunkRef) string {
	head := pageTokenVersion + "/" + video
	if d := filterDigest(filter); d != "" {
		head = pageTokenFilteredVersion + "/" + video + "/" + d
	}
	return pageTokenEncoding.EncodeToString([]byte(head + "/" + last.VideoID + "/" + strconv.Itoa(last.ChunkIndex)))
}

// parsePageToken returns the position token says, nil for "", or an error
// wrapping errInvalid: a token this worker did not make, or made for a
// listing of another video or with other filters. The token itself is not
// echoed.
func parsePageToken(token, video string, filter storage.Filter) (*storage.ChunkRef, error) {
	if token == "" {
		return nil, nil
	}
	bad := invalidf("page_token is not one this worker made: pass next_page_token back as it came, " +
		"or no page_token to start from the first chunk")
	if len(token) > maxPageTokenLen {
		return nil, bad
	}
	raw, err := pageTokenEncoding.DecodeString(token)
	if err != nil {
		return nil, bad
	}
	parts := strings.Split(string(raw), "/")
	digest := ""
	switch {
	case len(parts) == 4 && parts[0] == pageTokenVersion:
	case len(parts) == 5 && parts[0] == pageTokenFilteredVersion && len(parts[2]) == filterDigestLen:
		digest = parts[2]
		parts = slices.Delete(parts, 2, 3)
	default:
		return nil, bad
	}
	forVideo, lastVideo, lastIndex := parts[1], parts[2], parts[3]
	if forVideo != "" && storage.ValidateVideoID(forVideo) != nil || storage.ValidateVideoID(lastVideo) != nil {
		return nil, bad
	}
	n, err := strconv.Atoi(lastIndex)
	if err != nil || strconv.Itoa(n) != lastIndex || storage.ValidateChunkIndex(int64(n)) != nil {
		return nil, bad
	}
	if forVideo != video {
		return nil, invalidf("page_token continues a listing of %s, not of %s: a page token goes with the video_id "+
			"it was made for", describeVideo(forVideo), describeVideo(video))
	}
	if digest != filterDigest(filter) {
		return nil, invalidf("page_token continues a listing with other filters (video_codec, encoder, " +
			"processed_after, processed_before): send the filters of the request that returned it")
	}
	if forVideo != "" && lastVideo != forVideo {
		return nil, bad // a listing of one video only ever stops in it
	}
	return &storage.ChunkRef{VideoID: lastVideo, ChunkIndex: n}, nil
}

// describeVideo names a ListShards video_id in a message.
func describeVideo(id string) string {
	if id == "" {
		return "every video"
	}
	return "video " + strconv.Quote(id)
}
