package media

// Picture quality: per-picture PSNR and SSIM of a distorted video (a shard)
// against a reference (its chunk). The measuring lives in internal/quality,
// which the worker uses too; these are the master's names for it.

import (
	"context"

	"github.com/videoshard/videoshard/internal/quality"
)

// The quality types, under the master's names (see internal/quality).
type (
	// QualityInput is a range of pictures of one file (quality.Input).
	QualityInput = quality.Input
	// FrameQuality is one picture's PSNR and SSIM (quality.Frame).
	FrameQuality = quality.Frame
	// QualityStats summarises a run of frames (quality.Stats).
	QualityStats = quality.Stats
	// QualityOptions tune MeasureQuality (quality.Options).
	QualityOptions = quality.Options
	// FrameCountError reports two ranges with different picture counts
	// (quality.FrameCountError).
	FrameCountError = quality.FrameCountError
)

// Errors of MeasureQuality besides the media errors (ErrNotMedia and
// ErrNoVideo are quality's too).
var (
	// ErrFrameCountMismatch is quality.ErrFrameCountMismatch: the ranges
	// hold different numbers of pictures.
	ErrFrameCountMismatch = quality.ErrFrameCountMismatch
	// ErrDamaged is quality.ErrDamaged: the distorted input does not
	// decode cleanly.
	ErrDamaged = quality.ErrDamaged
	// ErrPictureSize is quality.ErrPictureSize: with SameSize, the
	// distorted input's pictures are not the reference's size.
	ErrPictureSize = quality.ErrPictureSize
	// ErrTimesDiffer is quality.ErrTimesDiffer: with SameTimes, the
	// distorted input's pictures are shown at other times.
	ErrTimesDiffer = quality.ErrTimesDiffer
	// ErrNoVMAF is quality.ErrNoVMAF: VMAF cannot be measured.
	ErrNoVMAF = quality.ErrNoVMAF
)

// MeasureQuality is quality.MeasureQuality with the master's Tools: dist's
// PSNR and SSIM against ref, picture by picture, paired by position. Its
// errors wrap ErrNotMedia, ErrNoVideo, ErrFrameCountMismatch, ErrPictureSize, ErrTimesDiffer, ErrNoVMAF,
// fs.ErrNotExist or ctx.Err() as quality.MeasureQuality documents.
func MeasureQuality(ctx context.Context, tools Tools, ref, dist QualityInput, opt QualityOptions) ([]FrameQuality, error) {
	return quality.MeasureQuality(ctx, tools, ref, dist, opt)
}

// IsQualityFinding reports whether a MeasureQuality error is a finding
// about the distorted input rather than a failure (quality.IsFinding).
func IsQualityFinding(err error) bool { return quality.IsFinding(err) }

// Summarize returns the minimum and mean PSNR and SSIM of frames
// (quality.Summarize).
func Summarize(frames []FrameQuality) QualityStats {
	return quality.Summarize(frames)
}
