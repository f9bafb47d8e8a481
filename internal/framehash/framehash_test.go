package framehash_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/internal/framehash"
)

const (
	hashA = "03bf8992a2e50253f26be3276e65856c"
	hashB = "ffeeddccbbaa99887766554433221100"
)

func TestParse(t *testing.T) {
	a, _ := hex.DecodeString(hashA)
	tests := []struct {
		line    string
		want    framehash.Line
		wantErr bool
	}{
		{"", framehash.Line{}, false},
		{"#format: frame checksums", framehash.Line{}, false},
		{"#tb 0: 1/12800", framehash.Line{Kind: framehash.TimeBase, TimeBase: [2]int64{1, 12800}}, false},
		{"#tb 0: 0/1", framehash.Line{}, true},
		{"#tb 0: 1/x", framehash.Line{}, true},
		{"0,        512,        512,      512,   115200, " + hashA,
			framehash.Line{Kind: framehash.Picture, PTS: 512, Duration: 512, Hash: framehash.Hash(a)}, false},
		{"0, -1, -5, -1, 10, " + hashA, framehash.Line{Kind: framehash.Picture, PTS: -5, Hash: framehash.Hash(a)}, false},
		{"0, 1, 1, 1, 10, abcd", framehash.Line{}, true},
		{"0, 1, 1, 1, " + hashA, framehash.Line{}, true},
		{"0, 1, x, 1, 10, " + hashA, framehash.Line{}, true},
	}
	for _, tt := range tests {
		got, err := framehash.Parse([]byte(tt.line))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, error %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCollector(t *testing.T) {
	out := "#software: Lavf\n#tb 0: 1/25\n0, 0, 0, 1, 10, " + hashA + "\n0, 1, 1, 1, 10, " + hashB
	a, _ := hex.DecodeString(hashA)
	b, _ := hex.DecodeString(hashB)
	both := append(append([]byte{}, a...), b...)
	tests := []struct {
		name    string
		max     int
		input   string
		want    []byte
		wantErr error
	}{
		{"two pictures, no final newline", 0, out, both, nil},
		{"bounded, within", 2, out + "\n", both, nil},
		{"bounded, beyond", 1, out, nil, framehash.ErrTooMany},
		{"a line without end", 0, strings.Repeat("x", 2000), nil, errors.New("")},
		{"garbage", 0, "0, 0\n", nil, errors.New("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time: lines split across writes.
			c := &framehash.Collector{Max: tt.max}
			for i := range len(tt.input) {
				if n, err := c.Write([]byte{tt.input[i]}); n != 1 || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			got, err := c.Hashes()
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Hashes: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("Hashes = %x, want an error", got)
			case errors.Is(tt.wantErr, framehash.ErrTooMany) && !errors.Is(err, framehash.ErrTooMany):
				t.Fatalf("Hashes: %v, want ErrTooMany", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Hashes = %x, want %x", got, tt.want)
			}
		})
	}
}
