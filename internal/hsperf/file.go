package hsperf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MaxFileSize bounds a read: HotSpot's default is 32 KiB (-XX:PerfDataMemorySize).
const MaxFileSize = 4 << 20

// ErrNotFound says a JVM has no hsperfdata file: started with
// -XX:-UsePerfData or -XX:+PerfDisableSharedMem, or not java at all.
var ErrNotFound = errors.New("no hsperfdata file")

// Find returns the file of the JVM with host PID pid (nsPID in its own PID
// namespace) run as uid. HotSpot writes it under /tmp of its own mount
// namespace (a systemd PrivateTmp= is one), which /proc/<pid>/root reaches;
// only a file owned by uid counts: another user's stale file is not this JVM's.
func Find(proc string, pid, nsPID int, uid uint32) (string, error) {
	tmp := filepath.Join(proc, strconv.Itoa(pid), "root", "tmp")
	dirs, err := os.ReadDir(tmp)
	if err != nil {
		return "", fmt.Errorf("listing %s: %w", tmp, err)
	}
	for _, d := range dirs {
		if !strings.HasPrefix(d.Name(), "hsperfdata_") {
			continue
		}
		p := filepath.Join(tmp, d.Name(), strconv.Itoa(nsPID))
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Uid == uid {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w for pid %d in %s", ErrNotFound, pid, tmp)
}

// ReadFile reads and parses the file at path if it is a regular file (never
// a symlink, which the JVM's user could point anywhere) owned by uid.
func ReadFile(path string, uid uint32) (*Counters, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrCorrupt)
	case st.Uid != uid:
		return nil, fmt.Errorf("%s: %w: owned by uid %d, the JVM runs as %d", path, ErrCorrupt, st.Uid, uid)
	case st.Size > MaxFileSize:
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", path, ErrCorrupt, st.Size, MaxFileSize)
	}
	b := make([]byte, st.Size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return c, nil
}

// NamespacePID is pid as its own PID namespace knows it (the last NSpid of
// /proc/<pid>/status): the name of its hsperfdata file.
func NamespacePID(proc string, pid int) (int, error) {
	p := filepath.Join(proc, strconv.Itoa(pid), "status")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", p, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[len(f)-1])
		}
	}
	return 0, fmt.Errorf("%s has no NSpid line", p)
}

// ReadJVM finds, reads and derives the figures of the JVM with host PID pid
// (nsPID in its own namespace) run as uid.
func ReadJVM(proc string, pid, nsPID int, uid uint32) (JVM, error) {
	path, err := Find(proc, pid, nsPID, uid)
	if err != nil {
		return JVM{}, err
	}
	c, err := ReadFile(path, uid)
	if err != nil {
		return JVM{}, err
	}
	return c.JVM()
}
