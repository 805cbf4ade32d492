// Package promstack is how the demo and the tests run Debian's prometheus
// and prometheus-alertmanager.
package promstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Instance is one Prometheus or Alertmanager to run.
type Instance struct {
	Dir    string // holds the configuration, Files and the data
	Addr   string // web listen address, host:port
	Config []byte
	// Files go beside the configuration (prometheus.yml's rule_files).
	Files map[string][]byte
	// Gossip is Alertmanager's cluster address; empty runs it alone.
	Gossip string
	Peers  []string
}

func (in Instance) URL() string { return "http://" + in.Addr }

// Prometheus writes in's files and returns the command line serving them.
func Prometheus(bin string, in Instance) ([]string, error) {
	config, err := in.write("prometheus.yml")
	if err != nil {
		return nil, err
	}
	return []string{bin, "--config.file=" + config,
		"--storage.tsdb.path=" + filepath.Join(in.Dir, "prometheus-data"),
		"--web.listen-address=" + in.Addr}, nil
}

// Alertmanager writes in's files and returns the command line serving them.
func Alertmanager(bin string, in Instance) ([]string, error) {
	config, err := in.write("alertmanager.yml")
	if err != nil {
		return nil, err
	}
	args := []string{bin, "--config.file=" + config,
		"--storage.path=" + filepath.Join(in.Dir, "alertmanager-data"),
		"--web.listen-address=" + in.Addr,
		"--cluster.listen-address=" + in.Gossip}
	for _, p := range in.Peers {
		args = append(args, "--cluster.peer="+p)
	}
	return args, nil
}

func (in Instance) write(configName string) (string, error) {
	if err := os.MkdirAll(in.Dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", in.Dir, err)
	}
	files := map[string][]byte{configName: in.Config}
	for name, data := range in.Files {
		files[name] = data
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(in.Dir, name), data, 0o600); err != nil {
			return "", fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return filepath.Join(in.Dir, configName), nil
}

// WaitReady polls url until it answers 200; failed, if set, ends it early.
func WaitReady(ctx context.Context, url string, timeout time.Duration, failed func() error) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if failed != nil {
			if ferr := failed(); ferr != nil {
				return ferr
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("%s did not answer within %s (last error: %v)", url, timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
