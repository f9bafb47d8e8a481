package quality_test

import (
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/videoshard/videoshard/internal/quality"
)

// The tests run the real ffmpeg and ffprobe. They fail, never skip, when
// those are missing: CI installs them, and a skip would hide that.

// mediaTools checks that ffmpeg and ffprobe are installed and returns the
// defaults.
func mediaTools(t testing.TB) quality.Tools {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the quality tests need %s in PATH (they fail rather than skip): %v", bin, err)
		}
	}
	return quality.Tools{}
}

// ffmpegT runs ffmpeg with args (after -nostdin -v error -y) to make a test
// fixture.
func ffmpegT(t testing.TB, args ...string) {
	t.Helper()
	full := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)
	if out, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ffprobeT runs ffprobe -v error with args and returns its trimmed output.
func ffprobeT(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", append([]string{"-v", "error"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
