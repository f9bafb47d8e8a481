package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/videoshard/videoshard/encode"
	"github.com/videoshard/videoshard/storage"
)

// Errors raised by the server itself, mapped in toStatus like the others.
var (
	errInvalid  = errors.New("invalid request")
	errTooLarge = errors.New("too large")
	errBusy     = errors.New("worker busy")
	// errUploadTimeout: a client did not send its upload (or a part of
	// it) within the worker's limits. DeadlineExceeded, the code of the
	// worker's other time bounds (ffmpeg.timeout): clients retry it, and
	// Aborted would mean a conflict between concurrent calls.
	errUploadTimeout = errors.New("upload timed out")
	// errUnauthenticated: a call without a valid bearer token (auth.go).
	errUnauthenticated = errors.New("authentication required")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvalid}, args...)...)
}

// toStatus is the one place errors become gRPC status codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	// A replication's source first: what it sent may also match the
	// store's errors (an invalid timestamp), but it is the source's fault.
	case errors.Is(err, errPeerNotAllowed), errors.Is(err, errSourceRefused):
		code = codes.PermissionDenied
	case errors.Is(err, errSourceNotFound):
		code = codes.NotFound
	case errors.Is(err, errSourceBadCopy):
		code = codes.DataLoss
	case errors.Is(err, errSourceUnavailable), errors.Is(err, errShuttingDown):
		code = codes.Unavailable
	case errors.Is(err, errSourceTimeout):
		code = codes.DeadlineExceeded
	case errors.Is(err, errInvalid),
		errors.Is(err, storage.ErrInvalid),
		errors.Is(err, encode.ErrInvalidInput),
		errors.Is(err, encode.ErrInvalidOptions),
		// The chunk itself is beyond what this worker decodes: no retry
		// helps, unlike the transient ResourceExhausted of errBusy.
		errors.Is(err, encode.ErrTooManyPixels):
		code = codes.InvalidArgument
	case errors.Is(err, encode.ErrOverrideNotAllowed):
		// A valid option the operator does not let callers choose: the
		// same request without it (or on a worker that allows it) works.
		code = codes.PermissionDenied
	case errors.Is(err, storage.ErrIndexCorrupt):
		// The worker cannot say what it stores until it restarts and
		// rebuilds its index: another worker may serve.
		code = codes.Unavailable
	case errors.Is(err, storage.ErrCorrupt), errors.Is(err, storage.ErrMismatch):
		// Before NotFound: a shard gone from under its metadata is both,
		// and the client must learn that bytes were lost.
		code = codes.DataLoss
	case errors.Is(err, storage.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, storage.ErrBusy):
		// The chunk is being written: the same call succeeds once that is
		// over, which is the client's to wait for, not a load to back off.
		code = codes.FailedPrecondition
	case errors.Is(err, errTooLarge), errors.Is(err, errBusy), errors.Is(err, storage.ErrNoSpace):
		code = codes.ResourceExhausted
	case errors.Is(err, errUnauthenticated):
		code = codes.Unauthenticated
	case errors.Is(err, encode.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, errUploadTimeout), errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	default:
		code = codes.Internal
	}
	st := status.New(code, clipMessage(err.Error()))
	if errors.Is(err, errBusy) {
		// Tell well-behaved clients when to come back.
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(busyRetryDelay)}); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// noSpace marks a write error from a full filesystem as storage.ErrNoSpace.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) && !errors.Is(err, storage.ErrNoSpace) {
		return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
	}
	return err
}

// busyRetryDelay is the retry hint sent with an overload refusal.
const busyRetryDelay = time.Second

// maxStatusMessage bounds the message of a status: a client's own value
// quoted back (an encoder name, a location, each escaped) comes back, and
// goes into the access log, at most this long, not as large as the
// request that carried it.
const maxStatusMessage = 1 << 10

// clipMessage is msg cut to maxStatusMessage bytes, on a character
// boundary, saying how long it was.
func clipMessage(msg string) string {
	if len(msg) <= maxStatusMessage {
		return msg
	}
	cut := maxStatusMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", msg[:cut], len(msg))
}
