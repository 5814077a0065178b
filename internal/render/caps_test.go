package render_test

import (
	"testing"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/render"
)

// TestDetectCaps checks that render's copies of detect's value caps, which
// it keeps so as not to import the pipeline, still agree with detect. Only
// this test imports detect, so the notifier's binary does not link it.
func TestDetectCaps(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want int
	}{
		{"ReportValuesCap", render.DetectValues, detect.ReportValuesCap},
		{"StoredValueLen", render.DetectValueLen, detect.StoredValueLen},
	} {
		if tt.got != tt.want {
			t.Errorf("render's copy of detect.%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}
