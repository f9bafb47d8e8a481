package main

import (
	"context"
	"errors"
	"strings"

	"github.com/videoshard/videoshard/master/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad flags, arguments or configuration
)

// runError marks an error from running a command, as opposed to the usage
// errors cobra and the flag checks return.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// failed marks err, if any, as a run error.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return &runError{err}
}

// grpcError is what status errors implement.
type grpcError interface {
	error
	GRPCStatus() *status.Status
}

// describe renders err for people: the gRPC status text
// "rpc error: code = X desc = Y" shortened to Y, and the code name, when
// there is one, at the end.
func describe(err error) string {
	msg := err.Error()
	if se, ok := errors.AsType[grpcError](err); ok {
		if desc := se.GRPCStatus().Message(); desc != "" {
			msg = strings.Replace(msg, se.Error(), desc, 1)
		}
	}
	if code, ok := errorCode(err); ok {
		msg += " (" + code.String() + ")"
	}
	return msg
}

// errorCode returns the gRPC code that best names err.
func errorCode(err error) (codes.Code, bool) {
	if se, ok := errors.AsType[grpcError](err); ok {
		return se.GRPCStatus().Code(), true
	}
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled, true
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, true
	case errors.Is(err, client.ErrChecksumMismatch), errors.Is(err, client.ErrSizeMismatch):
		return codes.DataLoss, true
	}
	return codes.OK, false
}
