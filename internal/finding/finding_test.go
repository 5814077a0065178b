package finding

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestJSONFields keeps the document's field names, which subscribers read:
// a fixture with every field decodes with no field left over and encodes
// back to the same JSON.
func TestJSONFields(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "every-field.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	var f Finding
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decode every-field.json: %v", err)
	}
	got, err := json.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, src); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("encode(decode(every-field.json)):\ngot  %s\nwant %s", got, want.Bytes())
	}
}

func TestSweepAddresses(t *testing.T) {
	tests := []struct {
		name        string
		f           Finding
		wantN       int
		wantAtLeast bool
	}{
		{"not a sweep", Finding{}, 0, false},
		{"exact", Finding{Distinct: map[string]int{"src_ip": 57, "path": 3}}, 57, false},
		{"lower bound", Finding{Distinct: map[string]int{"src_ip": 128}, DistinctSaturated: []string{"path", "src_ip"}}, 128, true},
		{"another field saturated", Finding{Distinct: map[string]int{"src_ip": 9}, DistinctSaturated: []string{"path"}}, 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, atLeast := tt.f.SweepAddresses()
			if n != tt.wantN || atLeast != tt.wantAtLeast {
				t.Errorf("SweepAddresses() = %d, %t; want %d, %t", n, atLeast, tt.wantN, tt.wantAtLeast)
			}
		})
	}
}
