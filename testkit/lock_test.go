package testkit_test

import (
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestHoldLock: what another connection (no busy timeout) may do while a
// lock is held, and what the holder's own writes become once it ends.
func TestHoldLock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		mode              testkit.LockMode
		commit            bool
		othersRead        bool
		wantPIDAfterwards int
	}{
		{name: "immediate, committed", mode: testkit.Immediate, commit: true, othersRead: true, wantPIDAfterwards: 7},
		{name: "immediate, released", mode: testkit.Immediate, othersRead: true, wantPIDAfterwards: 0},
		{name: "exclusive, released", mode: testkit.Exclusive, othersRead: false, wantPIDAfterwards: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d := h.Add(testkit.Spec{Name: "churn"})
			other, err := sqlitefile.Open(h.Home.DBPath(), sqlitefile.Options{Mode: sqlitefile.ReadWrite})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()

			l := h.HoldLock(tc.mode)
			if err := l.Exec(`UPDATE service SET process_id = 7 WHERE id = ?`, d.ID); err != nil {
				t.Fatal(err)
			}
			var pid int
			err = other.QueryRow(`SELECT process_id FROM service WHERE id = ?`, d.ID).Scan(&pid)
			if gotRead := err == nil; gotRead != tc.othersRead {
				t.Errorf("another connection read: %v, want a read to succeed: %v", err, tc.othersRead)
			}
			if _, err := other.Exec(`UPDATE service SET state = 'x' WHERE id = ?`, d.ID); err == nil {
				t.Error("another connection wrote while the lock was held")
			}
			end := l.Release
			if tc.commit {
				end = l.Commit
			}
			if err := end(); err != nil {
				t.Fatal(err)
			}
			if err := l.Release(); err != nil {
				t.Errorf("a second end: %v, want nothing more to do", err)
			}
			if got := h.Deployment(d.ID).PID; got != int64(tc.wantPIDAfterwards) {
				t.Errorf("process_id %d after the lock, want %d", got, tc.wantPIDAfterwards)
			}
		})
	}
}
