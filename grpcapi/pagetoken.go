package grpcapi

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/videoshard/videoshard/storage"
)

// A ListShards page token is a position in the listing: the last chunk a
// page held, and the video_id the listing was asked for, as
// "1/<video_id>/<last video>/<last index>" in unpadded base64url (opaque
// to clients: the format may change with its version). It needs no
// signature: it can only say where in the sorted listing the next page
// starts, and the listing holds only committed chunks of the asked video,
// so a token a client made up reaches nothing a listing from the start
// would not. It is still checked whole, so that a mangled one is refused
// rather than taken for some other position.

const (
	pageTokenVersion = "1"
	// maxPageTokenLen bounds a token before it is decoded: the longest one
	// made holds two video ids and an index.
	maxPageTokenLen = 4 * (len(pageTokenVersion) + 2*storage.MaxVideoIDLen + 10 + 3) / 3
)

var pageTokenEncoding = base64.RawURLEncoding

// pageToken is the token of the page after last in a listing of video
// ("" for every video).
func pageToken(video string, last storage.ChunkRef) string {
	return pageTokenEncoding.EncodeToString([]byte(pageTokenVersion + "/" + video + "/" + last.VideoID + "/" +
		strconv.Itoa(last.ChunkIndex)))
}

// parsePageToken returns the position token says, nil for "", or an error
// wrapping errInvalid: a token this worker did not make, or made for a
// listing of another video. The token itself is not echoed.
func parsePageToken(token, video string) (*storage.ChunkRef, error) {
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
	if len(parts) != 4 || parts[0] != pageTokenVersion {
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
