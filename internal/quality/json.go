package quality

// The JSON forms: encoding/json cannot write +Inf or NaN, so an infinite
// PSNR (identical pictures) is written as null and read back as +Inf, and
// an SSIM not measured (NaN) as null, read back as NaN.

import (
	"encoding/json"
	"math"
)

type frameJSON struct {
	Frame int64    `json:"frame"`
	PSNR  *float64 `json:"psnr"`
	SSIM  *float64 `json:"ssim"`
}

// MarshalJSON writes {"frame":..,"psnr":..,"ssim":..}, with null for an
// infinite PSNR.
func (f Frame) MarshalJSON() ([]byte, error) {
	return json.Marshal(frameJSON{Frame: f.Frame, PSNR: finiteOrNil(f.PSNR), SSIM: finiteOrNil(f.SSIM)})
}

// UnmarshalJSON reads what MarshalJSON writes; a null or absent PSNR is
// +Inf.
func (f *Frame) UnmarshalJSON(b []byte) error {
	var j frameJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Frame{Frame: j.Frame, PSNR: infIfNil(j.PSNR), SSIM: nanIfNil(j.SSIM)}
	return nil
}

type statsJSON struct {
	Frames   int      `json:"frames"`
	MinPSNR  *float64 `json:"min_psnr"`
	MeanPSNR *float64 `json:"mean_psnr"`
	MinSSIM  *float64 `json:"min_ssim"`
	MeanSSIM *float64 `json:"mean_ssim"`
}

// MarshalJSON writes snake_case fields, with null for an infinite PSNR.
func (s Stats) MarshalJSON() ([]byte, error) {
	return json.Marshal(statsJSON{
		Frames:   s.Frames,
		MinPSNR:  finiteOrNil(s.MinPSNR),
		MeanPSNR: finiteOrNil(s.MeanPSNR),
		MinSSIM:  finiteOrNil(s.MinSSIM),
		MeanSSIM: finiteOrNil(s.MeanSSIM),
	})
}

// UnmarshalJSON reads what MarshalJSON writes; a null or absent PSNR is
// +Inf.
func (s *Stats) UnmarshalJSON(b []byte) error {
	var j statsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Stats{
		Frames:   j.Frames,
		MinPSNR:  infIfNil(j.MinPSNR),
		MeanPSNR: infIfNil(j.MeanPSNR),
		MinSSIM:  nanIfNil(j.MinSSIM),
		MeanSSIM: nanIfNil(j.MeanSSIM),
	}
	return nil
}

// finiteOrNil returns a pointer to v, or nil when v is infinite or NaN:
// the JSON form of a PSNR.
func finiteOrNil(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

// infIfNil reads the JSON form of a PSNR: *v, or +Inf for nil.
func infIfNil(v *float64) float64 {
	if v == nil {
		return math.Inf(1)
	}
	return *v
}

// nanIfNil reads the JSON form of an SSIM: *v, or NaN (not measured) for
// nil.
func nanIfNil(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}
