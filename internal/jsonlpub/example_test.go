package jsonlpub_test

import (
	"context"
	"os"
	"time"

	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/jsonlpub"
)

func Example() {
	p := jsonlpub.New(os.Stdout)
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	_ = p.Publish(context.Background(), &detect.Finding{
		ID: "f-1", Rule: "anonymous-scan", Title: "Anonymous scan", Severity: "medium",
		ClusterName: "demo", SrcIP: "203.0.113.7", UserAgent: "<zgrab>", Count: 42,
		Window: "10m0s", FirstSeen: at, LastSeen: at.Add(5 * time.Minute), Summary: "42 anonymous requests",
	})
	// Output:
	// {"finding_id":"f-1","rule":"anonymous-scan","title":"Anonymous scan","severity":"medium","cluster_name":"demo","src_ip":"203.0.113.7","user_agent":"\u003czgrab\u003e","count":42,"window":"10m0s","first_seen":"2026-03-01T10:00:00Z","last_seen":"2026-03-01T10:05:00Z","summary":"42 anonymous requests"}
}
