package grpcapi

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/videoshard/videoshard/proto"
)

func TestPinVideo(t *testing.T) {
	h := newHarness(t, &fakeEncoder{}, Config{WorkerID: "w"})
	ctx := context.Background()
	resp, err := h.client.PinVideo(ctx, &pb.PinVideoRequest{VideoId: "movie"})
	if err != nil || !resp.GetPinned() {
		t.Fatalf("PinVideo = %v, %v", resp, err)
	}
	if !h.store.Pinned("movie") {
		t.Fatal("the store does not have the video pinned")
	}
	if resp, err := h.client.UnpinVideo(ctx, &pb.PinVideoRequest{VideoId: "movie"}); err != nil || resp.GetPinned() {
		t.Fatalf("UnpinVideo = %v, %v", resp, err)
	}
	if h.store.Pinned("movie") {
		t.Fatal("still pinned after UnpinVideo")
	}
	for _, id := range []string{"", "../etc", "a/b", "metadata", strings.Repeat("x", 1000)} {
		_, err := h.client.PinVideo(ctx, &pb.PinVideoRequest{VideoId: id})
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "video") {
			t.Errorf("PinVideo(%.20q) = %v, want InvalidArgument naming the video id", id, err)
		}
	}
	if got := h.store.PinnedVideos(); len(got) != 0 {
		t.Errorf("refused pins left %q pinned", got)
	}
}
