package hsperf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxFileSize bounds a read: HotSpot's default is 32 KiB (-XX:PerfDataMemorySize).
const MaxFileSize = 4 << 20

// ErrNotFound: no file (-XX:-UsePerfData, -XX:+PerfDisableSharedMem, not java).
var ErrNotFound = errors.New("no hsperfdata file")

// Find returns the file of JVM pid (nsPID in its namespace) run as uid: under
// /tmp of its mount namespace (PrivateTmp=), owned by uid, not another's stale one.
func Find(proc string, pid, nsPID int, uid uint32) (string, error) {
	tmp := filepath.Join(proc, strconv.Itoa(pid), "root", "tmp")
	dirs, err := perfDataDirs(tmp)
	if err != nil {
		return "", fmt.Errorf("listing %s: %w", tmp, err)
	}
	for _, d := range dirs {
		p := filepath.Join(tmp, d, strconv.Itoa(nsPID))
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Uid == uid {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w for pid %d in %s", ErrNotFound, pid, tmp)
}

// listings keeps each /tmp's hsperfdata_ folders while its mtime holds: all
// JVMs of a host mostly share one /tmp, which may hold thousands of entries.
var listings = struct {
	sync.Mutex
	byDir map[[2]uint64]listing // by device and inode
}{byDir: map[[2]uint64]listing{}}

type listing struct {
	mtime syscall.Timespec
	names []string
}

func perfDataDirs(tmp string) ([]string, error) {
	fi, err := os.Stat(tmp)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("no stat of %s", tmp)
	}
	key := [2]uint64{st.Dev, st.Ino}
	listings.Lock()
	l, ok := listings.byDir[key]
	listings.Unlock()
	if ok && l.mtime == st.Mtim {
		return l.names, nil
	}
	listedAt := time.Now()
	f, err := os.Open(tmp)
	if err != nil {
		return nil, err
	}
	all, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range all {
		if strings.HasPrefix(n, "hsperfdata_") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	// A change in the clock tick of the listing could leave the mtime as it was.
	if listedAt.Sub(time.Unix(st.Mtim.Unix())) > time.Second {
		listings.Lock()
		if len(listings.byDir) >= maxListings {
			clear(listings.byDir)
		}
		listings.byDir[key] = listing{mtime: st.Mtim, names: names}
		listings.Unlock()
	}
	return names, nil
}

// maxListings bounds the /tmp folders remembered (one per PrivateTmp service).
const maxListings = 64

// ReadFile parses path if it is a regular file (no symlink) owned by uid.
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

// NamespacePID is pid in its own PID namespace (last NSpid), its file's name.
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

// ReadJVM is Find, ReadFile and JVM in one.
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
