// Command bighome writes a Steam home whose wars total a given size, for
// scripts/bench-backup. The wars are random bytes: real wars are zip files,
// which compress no further either.
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
)

func main() {
	dir := flag.String("dir", "", "empty folder to write the Steam home into")
	totalMB := flag.Int("mb", 800, "size of all wars together, in MiB")
	n := flag.Int("wars", 8, "number of deployments, each with its war")
	flag.Parse()
	if err := write(*dir, int64(*totalMB)<<20, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bighome:", err)
		os.Exit(1)
	}
}

func write(dir string, total int64, n int) error {
	f, err := steamfixture.Create(dir, testkit.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	for i := range n {
		name := fmt.Sprintf("model%d", i)
		d, err := f.Add(testkit.Spec{Name: name, LogicalName: name})
		if err != nil {
			return err
		}
		war, err := os.Create(filepath.Join(dir, "var", "master", "model", fmt.Sprint(d.ModelID), name+".war"))
		if err != nil {
			return err
		}
		_, err = io.CopyN(war, rand.Reader, total/int64(n))
		if cerr := war.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing war of %s: %w", name, err)
		}
	}
	return nil
}
