package emu

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// NewTable creates a state table on endpoint for the test, named after it
// with prefix (see UniqueName), and returns its name.
func NewTable(t testing.TB, endpoint, prefix string) string {
	t.Helper()
	name := UniqueName(prefix, t.Name(), "table")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := CreateTable(ctx, endpoint, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// ScanTable returns every item of table (see Scan), failing the test when
// the scan fails.
func ScanTable(t testing.TB, endpoint, table string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items, err := Scan(ctx, endpoint, table)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// MustReceive drains q (see Receive), failing the test when that fails.
func MustReceive(t testing.TB, q Queue) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, err := Receive(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// ReadEvent returns a sample subscription event from the repository's
// events/ folder, the files `make local` and `sam local invoke` use.
func ReadEvent(t testing.TB, repoRoot, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
