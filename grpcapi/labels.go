package grpcapi

import (
	"fmt"
	"maps"
	"slices"
)

// Limits of the worker's labels (Config.Labels): they travel in every
// CheckHealth answer, and masters compare and print them.
const (
	maxLabels      = 32
	maxLabelLength = 63
)

// CheckLabels reports why labels cannot be a worker's failure-domain
// labels: at most 32, keys and values 1-63 characters of
// [A-Za-z0-9._-]. Errors name the key (sorted, so the first is stable).
func CheckLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return fmt.Errorf("%d labels, at most %d", len(labels), maxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if !labelText(k) {
			return fmt.Errorf("label key %q: must be 1-%d characters of A-Z a-z 0-9 . _ -", k, maxLabelLength)
		}
		if !labelText(labels[k]) {
			return fmt.Errorf("label %s: value %q must be 1-%d characters of A-Z a-z 0-9 . _ -", k, labels[k], maxLabelLength)
		}
	}
	return nil
}

func labelText(s string) bool {
	if len(s) == 0 || len(s) > maxLabelLength {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
