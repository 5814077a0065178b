package rules_test

import (
	"fmt"
	"log"

	"github.com/anonwatch/anonwatch/internal/audit"
	"github.com/anonwatch/anonwatch/internal/rules"
)

func Example() {
	src := []byte(`
rules:
  - id: anonymous-secret-read
    title: Anonymous secret read
    severity: high
    requires_any: ["system:anonymous"]
    match: anonymous && resource == "secrets" && verb in ["get", "list"]
    group_by: [src_ip, cluster_name]
    collect: [request_uri, code]
    threshold: {count: 1, window: 1h}
    escalate:
      - severity: critical
        when: code == 200
`)
	set, err := rules.Load("my-rules.yaml", src)
	if err != nil {
		log.Fatal(err)
	}
	line := []byte(`{"user":{"username":"system:anonymous"}}`)
	fmt.Println("parse the line:", set.Prefilter(line))

	ev := audit.Event{
		Verb:         "get",
		RequestURI:   "/api/v1/namespaces/default/secrets/db",
		User:         audit.User{Username: audit.Anonymous},
		SourceIPs:    []string{"203.0.113.9"},
		ObjectRef:    audit.ObjectRef{Resource: "secrets", Namespace: "default", Name: "db"},
		ResponseCode: 200,
	}
	set.Match(&ev, "prod", func(r *rules.Rule, marks []int) {
		sev := r.Severity
		for _, m := range marks {
			sev = max(sev, r.Escalate[m].Severity)
		}
		fmt.Printf("%s (%s) from %s: %s\n", r.ID, sev, rules.FieldSrcIP.Value(&ev, "prod"), rules.FieldRequestURI.Value(&ev, "prod"))
	})
	// Output:
	// parse the line: true
	// anonymous-secret-read (critical) from 203.0.113.9: /api/v1/namespaces/default/secrets/db
}

func ExampleLoad_error() {
	_, err := rules.Load("rules.yaml", []byte(`
rules:
  - id: eks-pod-scan
    title: Pod scan
    severity: medium
    match: verbb == "list"
    threshold: {count: 1, window: 1h}
`))
	fmt.Println(err)
	// Output:
	// rules.yaml: rule "eks-pod-scan": match: ERROR: <input>:1:1: undeclared reference to 'verbb' (did you mean 'verb'?)
	//  | verbb == "list"
	//  | ^
}
