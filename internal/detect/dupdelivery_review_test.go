package detect_test

import (
	"context"
	"sync"
	"testing"

	"github.com/anonwatch/anonwatch/internal/detect"
)

// holdFirst holds the first Publish until released.
type holdFirst struct {
	recorder
	once     sync.Once
	holding  chan struct{}
	released chan struct{}
}

func (h *holdFirst) Publish(ctx context.Context, f *detect.Finding) error {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.holding)
		<-h.released
	}
	return h.recorder.Publish(ctx, f)
}

// TestReviewConcurrentDuplicateDelivery: Lambda's asynchronous queue may
// hand the same event to two invocations at once (at-least-once, not only
// sequential retries). Both invocations carry the same batch id, so the
// "same batch is granted again" rule grants both claims and the finding is
// published twice in one period.
func TestReviewConcurrentDuplicateDelivery(t *testing.T) {
	pub := &holdFirst{holding: make(chan struct{}), released: make(chan struct{})}
	d, _ := newDetector(t, pub)
	b := batchOf("stream-a", 1, req{at: "10:00:00", src: "203.0.113.7", verb: "get", uri: "/api/v1/namespaces/kube-system/secrets/x", resource: "secrets", code: 200})
	errA := make(chan error, 1)
	go func() { _, err := d.Process(context.Background(), b); errA <- err }()
	<-pub.holding
	if _, err := d.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	close(pub.released)
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range pub.got {
		seen[f.Rule+"/"+f.Severity]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s published %d times in one period by two concurrent deliveries of one batch", k, n)
		}
	}
}
