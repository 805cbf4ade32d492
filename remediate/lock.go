package remediate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lock takes the deployment's lock file, waiting until ctx ends. flock(2)
// locks belong to the open file, so the lock serialises remediations within
// one remediator as well as across several, and the kernel drops it when
// its holder dies, however it dies. Lock files are never removed: removing
// one while another process waits on it would let a third lock a new file.
func (e *Engine) lock(ctx context.Context, id int64) (unlock func(), err error) {
	if err := os.MkdirAll(e.cfg.LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating lock folder: %w", err)
	}
	path := filepath.Join(e.cfg.LockDir, fmt.Sprintf("deployment-%d.lock", id))
	// Opened close-on-exec, as Go opens every file: a java started while
	// the lock is held must not inherit it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock of deployment %d: %w", id, err)
	}
	for wait := 2 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking deployment %d: %w", id, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock of deployment %d: %w", id, ctx.Err())
		case <-time.After(wait):
		}
	}
}
