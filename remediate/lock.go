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
// one remediator as well as across several, and the kernel drops it when its
// holder dies. A lock file may be removed by its holder (removeLock): a
// waiter that then locks the removed file sees that its path now names
// another file, or none, and starts over.
func (e *Engine) lock(ctx context.Context, id int64) (unlock func(), err error) {
	if err := os.MkdirAll(e.cfg.LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating lock folder: %w", err)
	}
	path := e.lockPath(id)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644) // close-on-exec: a java started under it must not inherit it
		if err != nil {
			return nil, fmt.Errorf("opening lock of deployment %d: %w", id, err)
		}
		if err := flockWait(ctx, f, id); err != nil {
			f.Close()
			return nil, err
		}
		if sameOpenFile(f, path) {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		f.Close()
	}
}

func (e *Engine) lockPath(id int64) string {
	return filepath.Join(e.cfg.LockDir, fmt.Sprintf("deployment-%d.lock", id))
}

func flockWait(ctx context.Context, f *os.File, id int64) error {
	for wait := 2 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("locking deployment %d: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the lock of deployment %d: %w", id, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// sameOpenFile reports whether path still names the open file f.
func sameOpenFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// removeLock removes the lock file of a deployment, if nobody holds it.
func (e *Engine) removeLock(id int64) error {
	path := e.lockPath(id)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("lock of deployment %d is held: %w", id, err)
	}
	if !sameOpenFile(f, path) {
		return nil
	}
	return os.Remove(path)
}
