package procid

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A pin tells a running process from one that exited, even one not reaped
// yet (its PID still taken), and no more pins are opened than the budget.
func TestPin(t *testing.T) {
	in, err := NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	if in.maxPins < 2 {
		t.Fatalf("pin budget %d under /proc", in.maxPins)
	}
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := in.openPin(cmd.Process.Pid)
	if p == nil {
		t.Fatal("no pidfd for a running child")
	}
	if p.exited() {
		t.Fatal("a running process is reported exited")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !zombie(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the child did not become a zombie")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !p.exited() {
		t.Error("a killed process, not reaped, is not reported exited")
	}
	p.release()

	in.maxPins = in.pins.Load() + 1
	first := in.openPin(os.Getpid())
	if first == nil || in.openPin(os.Getpid()) != nil {
		t.Errorf("with room for one pin: first %v, then a second one", first)
	}
	first.release()
	if in.openPin(os.Getpid()) == nil {
		t.Error("a released pin's room is not given back")
	}

	fixture, err := NewInspector(filepath.Join("..", "..", "testdata", "proc"))
	if err != nil {
		t.Fatal(err)
	}
	if fixture.openPin(os.Getpid()) != nil {
		t.Error("pinned a PID of a procfs that may be another namespace's")
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	_, after, _ := strings.Cut(string(b), ") ")
	return err == nil && strings.HasPrefix(after, "Z")
}
