package media

import "testing"

func TestPixFormatLoss(t *testing.T) {
	tests := []struct{ src, out, want string }{
		{"yuv420p", "yuv420p", ""},
		{"yuv420p", "yuv444p", ""},
		{"yuv420p10le", "yuv420p10le", ""},
		{"yuv420p", "yuv420p10le", ""},
		{"yuvj420p", "yuv420p", ""},
		{"yuva444p12le", "yuv444p10le", "alpha dropped, 12 to 10 bits"},
		{"yuva420p", "yuv420p", "alpha dropped"},
		{"yuv420p12le", "yuv420p10le", "12 to 10 bits"},
		{"gbrp", "yuv444p", "RGB to YUV"},
		{"rgb24", "yuv420p", "RGB to YUV"},
		{"yuv444p", "yuv420p", "4:4:4 to 4:2:0 chroma"},
		{"yuv422p10le", "yuv420p", "10 to 8 bits, 4:2:2 to 4:2:0 chroma"},
		{"nv12", "yuv420p", ""},
		{"p010le", "yuv420p10le", ""},
		{"gray", "yuv420p", ""},
		{"yuv420p", "gray", "YUV to GRAY"},
		{"gray10le", "gray", "10 to 8 bits"},
		{"rgba", "yuv420p", "alpha dropped, RGB to YUV"},
		{"pal8", "yuv444p", "RGB to YUV"},
		{"unknown_fmt", "yuv420p", ""},
		{"", "yuv420p", ""},
	}
	for _, tt := range tests {
		if got := pixFormatLoss(tt.src, tt.out); got != tt.want {
			t.Errorf("pixFormatLoss(%q, %q) = %q, want %q", tt.src, tt.out, got, tt.want)
		}
	}
}

func TestMirrored(t *testing.T) {
	tests := []struct {
		matrix string
		want   bool
	}{
		{"", false},
		{"00000000: 65536 0 0 00000001: 0 65536 0 00000002: 0 0 1073741824", false},        // identity
		{"00000000: 0 65536 0 00000001: -65536 0 0 00000002: 0 0 1073741824", false},       // 90°
		{"00000000: -65536 0 0 00000001: 0 -65536 0 00000002: 0 0 1073741824", false},      // 180°
		{"00000000: -65536 0 0 00000001: 0 65536 0 00000002: 20971520 0 1073741824", true}, // horizontal flip
		{"00000000: 65536 0 0 00000001: 0 -65536 0 00000002: 0 15728640 1073741824", true}, // vertical flip
		{"00000000: 0 65536 0 00000001: 65536 0 0 00000002: 0 0 1073741824", true},         // transpose
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := mirrored(tt.matrix); got != tt.want {
			t.Errorf("mirrored(%q) = %v, want %v", tt.matrix, got, tt.want)
		}
	}
}
