package hsperf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// captured are files copied from JDK 17 JVMs (testdata/Churn.java) under
// each of HotSpot's stop-the-world collectors.
func captured(t testing.TB) []string {
	files, err := filepath.Glob("testdata/*.hsperf")
	if err != nil || len(files) < 3 {
		t.Fatalf("captured files: %v %v", files, err)
	}
	return files
}

// jstat runs jstat with option (-gc, -class) on target (a pid or a file://
// URL) and returns its columns by header.
func jstat(t *testing.T, option, target string) map[string]float64 {
	t.Helper()
	bin, err := exec.LookPath("jstat")
	if err != nil {
		t.Fatal("jstat is not installed: install Debian's openjdk-17-jdk-headless")
	}
	out, err := exec.Command(bin, option, target).Output()
	if err != nil {
		t.Fatalf("jstat %s %s: %v", option, target, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("jstat %s %s printed %q", option, target, out)
	}
	head, vals := strings.Fields(lines[0]), strings.Fields(lines[1])
	cols := map[string]float64{}
	for i, h := range head {
		if v, err := strconv.ParseFloat(vals[i], 64); err == nil {
			cols[h] = v
		}
	}
	return cols
}

// compareWithJstat checks the reader's figures against jstat's columns
// (KiB with one decimal, seconds with three). Of a live JVM the reader reads
// before and after jstat: jstat's figure must lie between the two, give or
// take slack (a fraction) and gcSlack collections.
func compareWithJstat(t *testing.T, before, after JVM, cols map[string]float64, slack float64, gcSlack int64) {
	t.Helper()
	between := func(what string, fig func(JVM) float64, want, abs float64) {
		t.Helper()
		lo, hi := min(fig(before), fig(after)), max(fig(before), fig(after))
		tol := max(abs, slack*math.Abs(want))
		if want < lo-tol || want > hi+tol {
			t.Errorf("%s: reader %.3f..%.3f, jstat %.3f", what, lo, hi, want)
		}
	}
	between("heap used KiB", func(j JVM) float64 { return j.Heap.Used / 1024 }, cols["S0U"]+cols["S1U"]+cols["EU"]+cols["OU"], 0.2)
	between("old used KiB", func(j JVM) float64 { return j.Old.Used / 1024 }, cols["OU"], 0.05)
	between("old committed KiB", func(j JVM) float64 { return j.Old.Committed / 1024 }, cols["OC"], 0.05)
	between("metaspace used KiB", func(j JVM) float64 { return j.Metaspace.Used / 1024 }, cols["MU"], 0.05)
	between("metaspace committed KiB", func(j JVM) float64 { return j.Metaspace.Committed / 1024 }, cols["MC"], 0.05)
	if len(before.Collectors) < 2 || len(after.Collectors) != len(before.Collectors) {
		t.Fatalf("collectors %+v, %+v: want young and full", before.Collectors, after.Collectors)
	}
	for i, col := range []string{"YGC", "FGC"} {
		name := before.Collectors[i].Name
		between(name+" collections", func(j JVM) float64 { return float64(j.Collectors[i].Collections) }, cols[col], float64(gcSlack))
		between(name+" seconds", func(j JVM) float64 { return j.Collectors[i].Seconds }, cols[col+"T"], 0.0005)
	}
}

func TestCapturedFilesAgreeWithJstat(t *testing.T) {
	for _, f := range captured(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			j, err := c.JVM()
			if err != nil {
				t.Fatal(err)
			}
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatal(err)
			}
			compareWithJstat(t, j, j, jstat(t, "-gc", "file://"+abs), 0, 0)
			if loaded := jstat(t, "-class", "file://"+abs)["Loaded"]; float64(j.ClassesLoaded) != loaded {
				t.Errorf("classes loaded: reader %d, jstat %v", j.ClassesLoaded, loaded)
			}
			if j.ThreadsLive < 1 || j.Heap.Max < 60<<20 || j.Heap.Max > 70<<20 {
				t.Errorf("threads %d, heap max %.0f: want a live thread and the -Xmx64m it ran with", j.ThreadsLive, j.Heap.Max)
			}
		})
	}
}

// startChurn runs testdata/Churn.java on a real JVM until the test ends and
// returns its pid once it has made its garbage and keeps still.
func startChurn(t *testing.T, gc string) int {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal("java is not installed: install Debian's openjdk-17-jdk-headless")
	}
	cmd := exec.Command(java, "-Xmx64m", "-XX:+Use"+gc+"GC", "testdata/Churn.java", "1000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("Churn did not say ready")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Churn not ready after 60s")
	}
	return cmd.Process.Pid
}

func TestLiveJVMAgreesWithJstat(t *testing.T) {
	for _, gc := range []string{"G1", "Parallel"} {
		t.Run(gc, func(t *testing.T) {
			pid := startChurn(t, gc)
			nsPID, err := NamespacePID("/proc", pid)
			if err != nil {
				t.Fatal(err)
			}
			read := func() JVM {
				j, err := ReadJVM("/proc", pid, nsPID, uint32(os.Getuid()))
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			before := read()
			cols := jstat(t, "-gc", strconv.Itoa(pid))
			after := read()
			if before.Collectors[0].Collections == 0 {
				t.Fatal("no young collection yet: the comparison would prove little")
			}
			// jstat's own attach may make the JVM allocate or collect once.
			compareWithJstat(t, before, after, cols, 0.01, 1)
		})
	}
}

func TestFindAndReadRefuseOtherFiles(t *testing.T) {
	proc := t.TempDir()
	tmp := filepath.Join(proc, "42", "root", "tmp")
	for _, d := range []string{"hsperfdata_other", "hsperfdata_steam"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(captured(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(tmp, "hsperfdata_steam", "7")
	if err := os.WriteFile(real, b, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "hsperfdata_other", "7")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	uid := uint32(os.Getuid())
	if got, err := Find(proc, 42, 7, uid); err != nil || got != real {
		t.Errorf("Find = %q, %v; want %s", got, err, real)
	}
	if _, err := Find(proc, 42, 8, uid); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find of a JVM without a file: %v, want ErrNotFound", err)
	}
	if _, err := Find(proc, 42, 7, uid+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find of another user's file: %v, want ErrNotFound", err)
	}
	if _, err := ReadFile(link, uid); err == nil {
		t.Error("ReadFile followed a symlink")
	}
	if _, err := ReadFile(real, uid+1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadFile of a file owned by another uid: %v, want refused", err)
	}
	if _, err := ReadFile(filepath.Join(tmp, "none"), uid); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadFile of no file: %v, want ErrNotFound", err)
	}
	if c, err := ReadFile(real, uid); err != nil || len(c.Longs) < 100 {
		t.Errorf("ReadFile = %d counters, %v", len(c.Longs), err)
	}
}

func TestParseRefusesBadFiles(t *testing.T) {
	good, err := os.ReadFile(captured(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	order := binary.NativeEndian
	used := int(order.Uint32(good[8:]))
	first := int(order.Uint32(good[24:]))
	tests := []struct {
		name   string
		change func(b []byte) []byte
		want   error
	}{
		{"empty", func(b []byte) []byte { return nil }, ErrTruncated},
		{"prologue cut", func(b []byte) []byte { return b[:31] }, ErrTruncated},
		{"entries cut", func(b []byte) []byte { return b[:used-1] }, ErrTruncated},
		{"bad magic", func(b []byte) []byte { b[0] = 0xfe; return b }, ErrBadMagic},
		{"foreign endian", func(b []byte) []byte { b[4] ^= 1; return b }, ErrForeignEndian},
		{"version 1", func(b []byte) []byte { b[5] = 1; return b }, ErrVersion},
		{"not accessible", func(b []byte) []byte { b[7] = 0; return b }, ErrNotReady},
		{"entry offset inside prologue", func(b []byte) []byte { order.PutUint32(b[24:], 8); return b }, ErrCorrupt},
		{"entry offset past used", func(b []byte) []byte { order.PutUint32(b[24:], uint32(used+1)); return b }, ErrCorrupt},
		{"too many entries", func(b []byte) []byte { order.PutUint32(b[28:], 1<<30); return b }, ErrCorrupt},
		{"entries past used", func(b []byte) []byte {
			order.PutUint32(b[28:], uint32((used-first)/entryHeader))
			return b
		}, ErrTruncated},
		{"entry length zero", func(b []byte) []byte { order.PutUint32(b[first:], 0); return b }, ErrCorrupt},
		{"entry length negative", func(b []byte) []byte { order.PutUint32(b[first:], 0xfffffff0); return b }, ErrCorrupt},
		{"entry length past used", func(b []byte) []byte { order.PutUint32(b[first:], uint32(used)); return b }, ErrCorrupt},
		{"name offset past entry", func(b []byte) []byte { order.PutUint32(b[first+4:], 1<<20); return b }, ErrCorrupt},
		{"name offset negative", func(b []byte) []byte { order.PutUint32(b[first+4:], 0xffffff00); return b }, ErrCorrupt},
		{"data offset past entry", func(b []byte) []byte { order.PutUint32(b[first+16:], 1<<20); return b }, ErrCorrupt},
		{"vector past entry", func(b []byte) []byte {
			// The first entry is a long; make it a string that runs out.
			b[first+12] = typeByte
			order.PutUint32(b[first+8:], 1<<16)
			return b
		}, ErrCorrupt},
		{"unterminated name", func(b []byte) []byte {
			length := int(order.Uint32(b[first:]))
			name := int(order.Uint32(b[first+4:]))
			for i := first + name; i < first+length; i++ {
				b[i] = 'x'
			}
			return b
		}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.change(append([]byte(nil), good...))
			c, err := Parse(b)
			if !errors.Is(err, tc.want) {
				t.Errorf("Parse = %v, %v; want %v", c, err, tc.want)
			}
		})
	}
	if _, err := Parse(good); err != nil {
		t.Fatalf("the unchanged file: %v", err)
	}
}

func TestJVMNeedsTheClock(t *testing.T) {
	b, err := os.ReadFile(captured(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	delete(c.Longs, "sun.os.hrt.frequency")
	if _, err := c.JVM(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("JVM without sun.os.hrt.frequency: %v, want ErrCorrupt", err)
	}
}

// FuzzParse feeds the captured files, cut and bit-flipped, to Parse: it must
// never panic nor read outside the buffer, and what it accepts must decode
// the same again.
func FuzzParse(f *testing.F) {
	for _, name := range captured(f) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:prologueSize])
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(b)
		if err != nil || len(again.Longs) != len(c.Longs) || len(again.Strings) != len(c.Strings) {
			t.Fatalf("second parse differs: %v", err)
		}
		_, _ = c.JVM()
	})
}

// BenchmarkReadFile is the cost of one deployment's figures at a scrape:
// open, read, parse and derive.
func BenchmarkReadFile(b *testing.B) {
	path := captured(b)[0]
	tmp := filepath.Join(b.TempDir(), "1")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		b.Fatal(err)
	}
	uid := uint32(os.Getuid())
	b.ReportAllocs()
	for b.Loop() {
		c, err := ReadFile(tmp, uid)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.JVM(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse is BenchmarkReadFile without the file system: the part a
// background reader would not save.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(captured(b)[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.JVM(); err != nil {
			b.Fatal(err)
		}
	}
}

// Find lists a /tmp again only once its mtime changed: a folder added
// behind an unchanged mtime stays unseen, one added plainly is found.
func TestFindListsTmpOnceWhileUnchanged(t *testing.T) {
	proc := t.TempDir()
	tmp := filepath.Join(proc, "42", "root", "tmp")
	b, err := os.ReadFile(captured(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	add := func(user string, nsPID int) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(tmp, "hsperfdata_"+user), 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, "hsperfdata_"+user, strconv.Itoa(nsPID))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := time.Now().Add(-time.Hour)
	uid := uint32(os.Getuid())
	first := add("steam", 7)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(proc, 42, 7, uid); err != nil || got != first {
		t.Fatalf("Find = %q, %v; want %s", got, err, first)
	}

	hidden := add("hidden", 8)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(proc, 42, 8, uid); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find = %q, %v; want the remembered listing, without %s", got, err, hidden)
	}

	seen := add("seen", 9)
	if got, err := Find(proc, 42, 9, uid); err != nil || got != seen {
		t.Errorf("Find after /tmp changed = %q, %v; want %s", got, err, seen)
	}
}
