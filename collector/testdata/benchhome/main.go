// Command benchhome builds a Steam home with many deployments, each running
// as a live fake java with Steam's exact argv, for scripts/bench-exporter.
// The wars say mode=never_ready (the processes run without listening) unless
// -serve: then each answers /ping and /stats as a deployment does. With
// -hsperfdata, each gets a copy of that captured JVM counters file where its
// JVM's would be. It prints "ready" once every deployment runs and kills them
// all (and removes the copies) when it is sent SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/steam-overseer/steam-overseer/demo/fakescorer"
	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
)

func main() {
	dir := flag.String("dir", "", "empty folder to build the Steam home in")
	n := flag.Int("n", 1000, "number of deployments")
	java := flag.String("java", "", "the fake java (go build ./testdata/fakejava)")
	serve := flag.Bool("serve", false, "the fake javas listen and answer /ping and /stats")
	hsperfdata := flag.String("hsperfdata", "", "a captured hsperfdata file to give every fake java")
	flag.Parse()
	if *dir == "" || *java == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *java, *n, *serve, *hsperfdata); err != nil {
		fmt.Fprintln(os.Stderr, "benchhome:", err)
		os.Exit(1)
	}
}

func run(dir, java string, n int, serve bool, hsperfdata string) error {
	var counters []byte
	// HotSpot writes under /tmp whatever TMPDIR says.
	perfDir := filepath.Join("/tmp", "hsperfdata_"+userName())
	if hsperfdata != "" {
		var err error
		if counters, err = os.ReadFile(hsperfdata); err != nil {
			return err
		}
		if err := os.MkdirAll(perfDir, 0o755); err != nil {
			return err
		}
	}
	mode := "never_ready"
	if serve {
		mode = "normal"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	f, err := steamfixture.Create(dir, steamfixture.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	// Speeds up building the home only; the journal mode stays Steam's.
	if _, err := f.DB.Exec(`PRAGMA synchronous = OFF`); err != nil {
		return err
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if counters != nil {
				_ = os.Remove(filepath.Join(perfDir, strconv.Itoa(cmd.Process.Pid)))
			}
		}
	}()
	for i := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d, err := f.Add(steamfixture.Spec{Name: fmt.Sprintf("scorer-%d", i), LogicalName: "scorer",
			Port: 20000 + i, Behaviour: fakescorer.Behaviour{Mode: mode}})
		if err != nil {
			return err
		}
		cmd := f.Command(java, d)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", d.Name, err)
		}
		cmds = append(cmds, cmd)
		if counters != nil {
			if err := os.WriteFile(filepath.Join(perfDir, strconv.Itoa(cmd.Process.Pid)), counters, 0o600); err != nil {
				return err
			}
		}
		if err := f.SetPID(d.ID, cmd.Process.Pid); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}

// userName is whose hsperfdata folder a JVM of this user would write.
func userName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}
