package rules

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// errNotFinal stands for the detector skipping a record counted at another
// stage of its request.
var errNotFinal = errors.New("not a counted stage")

// parseEvent decodes one audit log line as the detector does: audit.Parse,
// then only the stages it counts (audit.Event.Counted).
func parseEvent(line []byte) (audit.Event, error) {
	ev, err := audit.Parse(line, audit.DefaultMaxSize)
	if err != nil {
		return audit.Event{}, err
	}
	if !ev.Counted() {
		return audit.Event{}, errNotFinal
	}
	return ev, nil
}

// fixture is one line of testdata/cases.jsonl or testdata/system_traffic.jsonl:
// an audit event and the default rules it must match, each with the marks
// (indices of satisfied `when` escalations) Match reports.
type fixture struct {
	Name string           `json:"name"`
	Want map[string][]int `json:"want"`
	// Prefilter, when present, is what Set.Prefilter must say about the
	// raw event line.
	Prefilter *bool           `json:"prefilter"`
	Event     json.RawMessage `json:"event"`
	// Damage, when set, makes Event a JSON string holding a damaged line
	// (cut, padded, not JSON), which the detector salvages
	// (audit.Salvage) and marks with this reason.
	Damage string `json:"damage"`
}

// event returns the fixture's event as the detector hands it to the rules.
func (fx *fixture) event() (audit.Event, error) {
	if fx.Damage == "" {
		return parseEvent(fx.Event)
	}
	var line string
	if err := json.Unmarshal(fx.Event, &line); err != nil {
		return audit.Event{}, fmt.Errorf("a damaged fixture's event must be a JSON string: %v", err)
	}
	ev, ok := audit.Salvage([]byte(line))
	if !ok {
		return audit.Event{}, errors.New("not an audit event, even salvaged")
	}
	ev.Damage, ev.LineSize = fx.Damage, len(line)
	return ev, nil
}

func readFixtures(t testing.TB, paths ...string) []fixture {
	t.Helper()
	var out []fixture
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var fx fixture
			if err := json.Unmarshal(sc.Bytes(), &fx); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			out = append(out, fx)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// matches runs s over ev and returns rule id -> marks (copied).
func matches(s *Set, ev *audit.Event, cluster string) map[string][]int {
	got := map[string][]int{}
	s.Match(ev, cluster, func(r *Rule, marks []int) {
		got[r.ID] = append([]int{}, marks...)
	})
	return got
}

func mustDefault(t testing.TB) *Set {
	t.Helper()
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
