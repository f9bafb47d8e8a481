package encode

// FFmpegArgs returns the ffmpeg command line (without the program name)
// that f would run to encode inPath into outPath, for tests and benchmarks.
func FFmpegArgs(f *FFmpeg, inPath, outPath string, opts Options) ([]string, error) {
	s, err := f.resolve(opts)
	if err != nil {
		return nil, err
	}
	return f.args(inPath, outPath, s), nil
}
