package memstate_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/memstate"
)

func TestExportSets(t *testing.T) {
	// hashes is a full Distinct set, in order.
	hashes := make([]string, detect.DistinctCap)
	full := make(map[string]bool, detect.DistinctCap)
	for i := range hashes {
		hashes[i] = fmt.Sprintf("h%04d", i)
		full[hashes[i]] = true
	}
	tests := []struct {
		name             string
		distinct, values map[string]map[string]bool
		saturated        map[string]bool
		want             detect.Bucket
	}{
		{
			name: "nothing",
			want: detect.Bucket{},
		},
		{
			name:      "empty sets are left out",
			distinct:  map[string]map[string]bool{"path": {}},
			values:    map[string]map[string]bool{"verb": {}},
			saturated: map[string]bool{},
			want:      detect.Bucket{},
		},
		{
			name:      "sorted, and saturated fields kept",
			distinct:  map[string]map[string]bool{"path": {"h2": true, "h1": true}},
			values:    map[string]map[string]bool{"verb": {"list": true, "get": true}},
			saturated: map[string]bool{"user_agent": true},
			want: detect.Bucket{
				Distinct:  map[string][]string{"path": {"h1", "h2"}},
				Values:    map[string][]string{"verb": {"get", "list"}},
				Saturated: []string{"user_agent"},
			},
		},
		{
			name:      "a full Distinct set is saturated",
			distinct:  map[string]map[string]bool{"path": full, "verb": {"a": true}},
			saturated: map[string]bool{"user_agent": true},
			want: detect.Bucket{
				Distinct:  map[string][]string{"path": hashes, "verb": {"a"}},
				Saturated: []string{"path", "user_agent"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saturated := maps.Clone(tt.saturated)
			var got detect.Bucket
			memstate.ExportSets(&got, tt.distinct, tt.values, tt.saturated)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ExportSets() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(saturated, tt.saturated); diff != "" {
				t.Errorf("ExportSets() modified saturated (-before +after):\n%s", diff)
			}
		})
	}
}
