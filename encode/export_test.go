package encode

import "slices"

// FFmpegArgs returns the ffmpeg command line (without the program name)
// that f would run to encode inPath into outPath, for tests and benchmarks.
func FFmpegArgs(f *FFmpeg, inPath, outPath string, opts Options) ([]string, error) {
	s, err := f.resolve(opts)
	if err != nil {
		return nil, err
	}
	return f.args(inPath, outPath, s), nil
}

// AnyOverride allows every allowlisted codec, preset and CRF: what requests
// could choose before there was a policy, for tests of other things.
func AnyOverride() OverridePolicy {
	var p OverridePolicy
	for name, spec := range videoCodecs {
		p.VideoCodecs = append(p.VideoCodecs, name)
		for _, preset := range spec.presets {
			if !slices.Contains(p.Presets, preset) {
				p.Presets = append(p.Presets, preset)
			}
		}
	}
	p.CRF = &CRFRange{Min: 0, Max: maxCRF()}
	return p
}
