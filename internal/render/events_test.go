package render

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// eventFindings are the findings `anonwatch replay events/` prints. The
// CLI's golden test keeps that file equal to what the detector produces, so
// these renderings follow the real pipeline rather than hand-made findings.
const eventFindings = "../../cmd/anonwatch/testdata/replay-events.golden"

func TestGoldenEventFindings(t *testing.T) {
	f, err := os.Open(eventFindings)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		var fd finding.Finding
		if err := json.Unmarshal(sc.Bytes(), &fd); err != nil {
			t.Fatal(err)
		}
		who := fd.SrcIP
		if who == "" {
			who = "user"
		}
		name := strings.NewReplacer(":", "_", ".", "_").Replace(fd.Rule + "-" + who)
		if seen[name] {
			t.Fatalf("two findings named %s", name)
		}
		seen[name] = true
		for _, r := range renderings {
			if r.kind == "json" || r.kind == "sns" {
				continue // the JSON is the input itself; SNS nests the others
			}
			t.Run(name+"/"+r.kind, func(t *testing.T) {
				got, err := r.render(&fd)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", "events", name+"."+r.kind+".golden")
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
				}
			})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 5 {
		t.Fatalf("only %d findings in %s", len(seen), eventFindings)
	}
}
