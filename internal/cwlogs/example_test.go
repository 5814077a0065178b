package cwlogs_test

import (
	"fmt"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
)

func ExampleDecodeEvent() {
	env, err := cwlogs.Encode(cwlogs.Batch{
		MessageType: cwlogs.DataMessage,
		LogGroup:    "/aws/eks/prod/cluster",
		LogStream:   "kube-apiserver-audit-1",
		Events:      []cwlogs.LogEvent{{ID: "1", Timestamp: 1735787045000, Message: []byte(`{"kind":"Event"}`)}},
	})
	if err != nil {
		panic(err)
	}
	b, err := cwlogs.DecodeEvent(env, cwlogs.DefaultLimits)
	if err != nil {
		panic(err)
	}
	fmt.Println(b.Cluster, len(b.Events), string(b.Events[0].Message))
	// Output: prod 1 {"kind":"Event"}
}

func ExampleClusterName() {
	fmt.Println(cwlogs.ClusterName("/aws/eks/prod-eu/cluster"))
	fmt.Println(cwlogs.ClusterName("/custom/audit"))
	// Output:
	// prod-eu
	// /custom/audit
}
