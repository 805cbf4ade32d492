// Command benchhome builds a Steam home with many deployments, each running
// as a live fake java with Steam's exact argv, for scripts/bench-exporter.
// The wars say mode=never_ready: the processes run without listening, so a
// thousand of them stay cheap. It prints "ready" once every deployment runs
// and kills them all when it is sent SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/steam-overseer/steam-overseer/demo/fakescorer"
	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
)

func main() {
	dir := flag.String("dir", "", "empty folder to build the Steam home in")
	n := flag.Int("n", 1000, "number of deployments")
	java := flag.String("java", "", "the fake java (go build ./testdata/fakejava)")
	flag.Parse()
	if *dir == "" || *java == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *java, *n); err != nil {
		fmt.Fprintln(os.Stderr, "benchhome:", err)
		os.Exit(1)
	}
}

func run(dir, java string, n int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	f, err := steamfixture.Create(dir, testkit.Options{})
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
		}
	}()
	for i := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d, err := f.Add(testkit.Spec{Name: fmt.Sprintf("scorer-%d", i), LogicalName: "scorer",
			Port: 20000 + i, Behaviour: fakescorer.Behaviour{Mode: "never_ready"}})
		if err != nil {
			return err
		}
		cmd := f.Command(java, d)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", d.Name, err)
		}
		cmds = append(cmds, cmd)
		if err := f.SetPID(d.ID, cmd.Process.Pid); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}
