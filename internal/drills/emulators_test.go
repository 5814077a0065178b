//go:build integration

package drills

import (
	"path/filepath"
	"testing"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
)

// startDynalite starts dynalite on a free loopback port (see
// emu.StartDynalite).
func startDynalite(logPath, dataDir string) (*emu.Server, error) {
	return emu.StartDynalite(nodeBin, dynaliteCLI, logPath, dataDir)
}

// privateDynalite starts a dynalite that keeps its data in the test's
// temporary folder, for drills that kill it, and stops it when the test
// ends.
func privateDynalite(t testing.TB) *emu.Server {
	t.Helper()
	dir := t.TempDir()
	s, err := startDynalite(filepath.Join(dir, "dynalite.log"), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// privateGoaws starts a goaws declaring topo, for drills that kill it, and
// stops it when the test ends.
func privateGoaws(t testing.TB, topo emu.Topology) *emu.Server {
	t.Helper()
	s, err := emu.StartGoaws(goawsBin, t.TempDir(), "private", &topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
