package client

import (
	"context"
	"strings"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A worker's words reach the user's terminal: its error messages, worker
// id, codec names, shard locations. A hostile one could move the cursor,
// rewrite earlier lines, set the window title or reorder text with escape
// sequences and bidirectional controls, so every string a peer sends is
// made printable where it enters the master: in the client's interceptors.

// maxPeerText bounds one string from a peer, in bytes, before it is
// shortened with "...".
const maxPeerText = 4 << 10

// printable replaces what is not printable text in s (invalid UTF-8,
// control characters, bidirectional and other format characters) with
// U+FFFD, and shortens it to maxPeerText bytes.
func printable(s string) string {
	if len(s) > maxPeerText {
		s = strings.ToValidUTF8(s[:maxPeerText], "") + "..."
	}
	clean := true
	for _, r := range s {
		if !printableRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s // common: no copy
	}
	return strings.Map(func(r rune) rune {
		if printableRune(r) {
			return r
		}
		return unicode.ReplacementChar
	}, strings.ToValidUTF8(s, string(unicode.ReplacementChar)))
}

func printableRune(r rune) bool {
	return r != unicode.ReplacementChar && !unicode.IsControl(r) && !unicode.Is(unicode.Cf, r)
}

// cleanMessage makes every string in m, nested messages, lists and maps
// included, printable. Bytes are left alone.
func cleanMessage(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				switch fd.Kind() {
				case protoreflect.StringKind:
					l.Set(i, protoreflect.ValueOfString(printable(l.Get(i).String())))
				case protoreflect.MessageKind, protoreflect.GroupKind:
					cleanMessage(l.Get(i).Message())
				}
			}
		case fd.IsMap():
			mp := v.Map()
			var keys []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			for _, k := range keys {
				val := mp.Get(k)
				switch fd.MapValue().Kind() {
				case protoreflect.StringKind:
					val = protoreflect.ValueOfString(printable(val.String()))
				case protoreflect.MessageKind, protoreflect.GroupKind:
					cleanMessage(val.Message())
				}
				if fd.MapKey().Kind() == protoreflect.StringKind {
					mp.Clear(k)
					k = protoreflect.ValueOfString(printable(k.String())).MapKey()
				}
				mp.Set(k, val)
			}
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(printable(v.String())))
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			cleanMessage(v.Message())
		}
		return true
	})
}

// cleanReply makes a reply and an error from a peer printable.
func cleanReply(reply any, err error) error {
	if m, ok := reply.(proto.Message); ok && err == nil {
		cleanMessage(m.ProtoReflect())
	}
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if msg := printable(st.Message()); msg != st.Message() {
		return status.Error(st.Code(), msg)
	}
	return err
}

// cleanUnary is the client's unary interceptor: see cleanReply.
func cleanUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return cleanReply(reply, invoker(ctx, method, req, reply, cc, opts...))
}

// cleanStream is the client's stream interceptor: every message received
// and every error is made printable.
func cleanStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, cleanReply(nil, err)
	}
	return cleanClientStream{s}, nil
}

type cleanClientStream struct{ grpc.ClientStream }

func (s cleanClientStream) RecvMsg(m any) error {
	return cleanReply(m, s.ClientStream.RecvMsg(m))
}

func (s cleanClientStream) CloseSend() error { return cleanReply(nil, s.ClientStream.CloseSend()) }
