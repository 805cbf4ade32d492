package steam_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestRows: the watch's cheap read agrees with Deployments on id, PID and
// state, odd rows included, and a missing database is an error.
func TestRows(t *testing.T) {
	h := testkit.NewHome(t, testkit.Options{Lax: true})
	a := h.Add(testkit.Spec{Name: "a", LogicalName: "a"})
	b := h.Add(testkit.Spec{Name: "b", LogicalName: "b", State: "stopped"})
	c := h.Add(testkit.Spec{Name: "c", NoWar: true})
	h.Exec(`UPDATE service SET process_id = 4242 WHERE id = ?`, a.ID)
	h.Exec(`UPDATE service SET process_id = NULL WHERE id = ?`, b.ID)
	h.Exec(`UPDATE service SET process_id = 'n/a', state = 'failed' WHERE id = ?`, c.ID)

	reg := steam.NewRegistry(h.Home)
	rows, err := reg.Rows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []steam.ServiceRow{{ID: a.ID, PID: 4242, State: "started"}, {ID: b.ID, PID: 0, State: "stopped"},
		{ID: c.ID, PID: 0, State: "failed"}}
	slices.SortFunc(rows, func(x, y steam.ServiceRow) int { return int(x.ID - y.ID) })
	if !slices.Equal(rows, want) {
		t.Errorf("Rows = %+v, want %+v", rows, want)
	}
	ds, err := reg.Deployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if got := (steam.ServiceRow{ID: d.ID, PID: d.PID, State: d.State}); got != rows[i] {
			t.Errorf("Deployments has %+v, Rows %+v", got, rows[i])
		}
	}

	if err := os.Remove(h.Home.DBPath()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Rows(context.Background()); err == nil {
		t.Error("Rows without steam.db: no error")
	}
}
