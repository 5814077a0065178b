package finding_test

import (
	"encoding/json"
	"fmt"

	"github.com/anonwatch/anonwatch/internal/finding"
)

// A consumer decodes the document and ranks it by its severity.
func ExampleParseSeverity() {
	var f finding.Finding
	doc := `{"finding_id":"f-1","rule":"anonymous-secret-read","severity":"critical","count":1}`
	if err := json.Unmarshal([]byte(doc), &f); err != nil {
		fmt.Println(err)
		return
	}
	sev, err := finding.ParseSeverity(f.Severity)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Rule, sev, sev >= finding.High)
	// Output: anonymous-secret-read critical true
}
