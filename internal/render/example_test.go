package render_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/anonwatch/anonwatch/internal/finding"
	"github.com/anonwatch/anonwatch/internal/render"
)

func ExampleEmailSubject() {
	f := &finding.Finding{
		Severity:    "high",
		Rule:        "anonymous-request-allowed",
		ClusterName: "demo",
		SrcIP:       "203.0.113.7",
		UserAgent:   "<!channel> curl/8.5.0",
	}
	fmt.Println(render.EmailSubject(f))
	// Output: [HIGH] anonymous-request-allowed on demo from 203.0.113.7
}

func ExampleEmailBody() {
	f := &finding.Finding{
		ID: "f-1", Rule: "anonymous-request-allowed", Title: "Anonymous request allowed",
		Severity: "high", ClusterName: "demo", SrcIP: "203.0.113.7", Count: 1, Window: "5m0s",
		Values: map[string][]string{"path": {"/api/v1/secrets\r\nFinding: f-fake"}},
	}
	body := render.EmailBody(f)
	fmt.Println(strings.Split(body, "\n")[0])
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, "secrets") {
			fmt.Println(l)
		}
	}
	// Output:
	// HIGH: Anonymous request allowed on demo from 203.0.113.7 (documentation), 1 request in 5m0s
	//   - "/api/v1/secrets\r\nFinding: f-fake"
}

func ExampleSNS() {
	f := &finding.Finding{
		ID: "f-1", Rule: "anonymous-request-allowed", Severity: "high",
		ClusterName: "demo", SrcIP: "203.0.113.7", Count: 1, Window: "5m0s",
	}
	m, err := render.SNS(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Subject)
	fmt.Println(len(body), body["sms"])
	// Output:
	// [HIGH] anonymous-request-allowed on demo from 203.0.113.7
	// 4 [HIGH] anonymous-request-allowed on demo from 203.0.113.7
}
