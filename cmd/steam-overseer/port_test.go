package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestTextPortStartsNothing: a dead deployment whose port column holds the
// text '80a' is port_invalid to the exporter, and neither reconcile nor the
// remediator starts a java for it (SQLite's CAST would have made it 80).
func TestTextPortStartsNothing(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "textport", LogicalName: "textport"})
	testkit.Kill(t, p)
	h.Exec(`UPDATE service SET port = '80a' WHERE id = ?`, d.ID)

	code, out, stderr := runBinary(t, "reconcile", "--once", "--steam.home="+h.Home.Dir, "--java.path="+h.Java)
	if code != 1 || !strings.Contains(out, "port_invalid") {
		t.Errorf("reconcile --once: exit %d, want 1 naming port_invalid:\n%s%s", code, out, stderr)
	}

	r := startRemediator(t, h)
	if code, body := r.notify(t, d.ID); code != http.StatusOK {
		t.Fatalf("POST /webhook: %d %s", code, body)
	}
	r.drain(t)
	if n := testkit.StartsLogged(t, h, d.ID); n != 0 {
		t.Errorf("%d starts of a deployment with port '80a', want 0", n)
	}

	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startExporter(t, "--steam.home="+h.Home.Dir, "--web.listen-address="+addr)
	testkit.Eventually(t, 10*time.Second, "the exporter to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	_, body := get(t, "http://"+addr+"/metrics")
	info := grepLines(body, fmt.Sprintf(`steam_deployment_info{address="127.0.0.1",deployment="textport",deployment_id="%d",`, d.ID))
	if !strings.Contains(info, `problem="port_invalid"`) {
		t.Errorf("steam_deployment_info without problem=\"port_invalid\":\n%s", grepLines(body, "steam_deployment_info"))
	}
}

// grepLines returns the lines of s that contain substr.
func grepLines(s, substr string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
