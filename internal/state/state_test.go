package state_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/state"
)

// openBoth opens a new state database read-write, as the remediator does,
// and read-only beside it, as the exporter and status do; both are closed
// when the test ends.
func openBoth(t *testing.T) (rw, ro *state.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	rw, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rw.Close() })
	ro, err = state.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return rw, ro
}
