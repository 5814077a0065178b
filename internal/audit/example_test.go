package audit_test

import (
	"errors"
	"fmt"

	"github.com/anonwatch/anonwatch/internal/audit"
)

func ExampleParse() {
	line := []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete",` +
		`"requestURI":"/version","verb":"get","user":{"username":"system:anonymous"},` +
		`"sourceIPs":["127.0.0.1","203.0.113.7"],"responseStatus":{"code":200},` +
		`"requestReceivedTimestamp":"2025-01-02T03:04:05.123456Z"}`)
	e, err := audit.Parse(line, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(e.IsAnonymous(), e.Final(), e.SrcIP(), e.ForwardedFor(), e.ResponseCode)

	_, err = audit.Parse([]byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","requestURI":"/api/v1/na[Truncated...]`), 0)
	fmt.Println(errors.Is(err, audit.ErrTruncated))
	// Output:
	// true true 203.0.113.7 [127.0.0.1] 200
	// true
}
