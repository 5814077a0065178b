package finding

import (
	"encoding/json"
	"testing"
)

func TestSeverityText(t *testing.T) {
	for _, tt := range []struct {
		sev  Severity
		name string
	}{{Low, "low"}, {Medium, "medium"}, {High, "high"}, {Critical, "critical"}} {
		if got := tt.sev.String(); got != tt.name {
			t.Errorf("%d.String() = %q, want %q", int(tt.sev), got, tt.name)
		}
		b, err := json.Marshal(tt.sev)
		if err != nil || string(b) != `"`+tt.name+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v; want %q", tt.sev, b, err, tt.name)
		}
		var back Severity
		if err := json.Unmarshal(b, &back); err != nil || back != tt.sev {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, tt.sev)
		}
		if got, err := ParseSeverity(tt.name); err != nil || got != tt.sev {
			t.Errorf("ParseSeverity(%q) = %v, %v", tt.name, got, err)
		}
	}
	if !(Low < Medium && Medium < High && High < Critical) {
		t.Errorf("severities are not ordered")
	}
	for _, bad := range []Severity{0, -1, Critical + 1} {
		if _, err := bad.MarshalText(); err == nil {
			t.Errorf("Severity(%d).MarshalText() succeeded, want an error", int(bad))
		}
		if got, want := bad.String(), "Severity("; len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("Severity(%d).String() = %q", int(bad), got)
		}
	}
	for _, bad := range []string{"", "HIGH", "info", "warning"} {
		var s Severity
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", bad, s)
		}
	}
}
