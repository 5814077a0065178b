package detect_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anonwatch/anonwatch/internal/cwlogs"
	"github.com/anonwatch/anonwatch/internal/detect"
	"github.com/anonwatch/anonwatch/internal/synth"
)

// TestPrepareConcurrently checks that batches prepared all at once and
// committed in order publish what Process publishes over them in order:
// the same findings, in the same order, with the same results.
func TestPrepareConcurrently(t *testing.T) {
	g := synth.New(5, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), 3*time.Second, synth.Mix{Anonymous: 0.4, RequestReceived: 0.01})
	var batches []cwlogs.Batch
	for i := range 24 {
		lines := make([][]byte, 50)
		for j := range lines {
			lines[j] = g.Next()
		}
		batches = append(batches, synth.Batch(lines, "/aws/eks/demo/cluster", "kube-apiserver-audit-0", 1+i*len(lines)))
	}
	ctx := context.Background()

	var seqPub recorder
	seq, _ := newDetector(t, &seqPub)
	var want []detect.Result
	for i := range batches {
		res, err := seq.Process(ctx, &batches[i])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res)
	}

	var parPub recorder
	par, _ := newDetector(t, &parPub)
	prepared := make([]*detect.Prepared, len(batches))
	var wg sync.WaitGroup
	for i := range batches {
		wg.Go(func() { prepared[i] = par.Prepare(ctx, &batches[i]) })
	}
	wg.Wait()
	var got []detect.Result
	for _, p := range prepared {
		res, err := par.Commit(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res)
	}

	if len(seqPub.got) == 0 {
		t.Fatal("no finding published: the test would compare nothing")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results mismatch (-Process +Prepare and Commit):\n%s", diff)
	}
	if diff := cmp.Diff(seqPub.got, parPub.got); diff != "" {
		t.Errorf("findings mismatch (-Process +Prepare and Commit):\n%s", diff)
	}
}
