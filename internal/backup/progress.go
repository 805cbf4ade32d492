package backup

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress counts the bytes a backup has archived against the total it
// will archive. The total is known once the model folder is listed, after
// the databases; until then it is what has been counted. A nil *Progress
// counts nothing.
type Progress struct {
	done, total atomic.Int64
}

// Write counts len(b) bytes done; a Progress is an io.Writer so that it can
// sit in the io.MultiWriter the archive copies through.
func (p *Progress) Write(b []byte) (int, error) {
	if p != nil {
		p.done.Add(int64(len(b)))
	}
	return len(b), nil
}

// Done returns the bytes archived so far.
func (p *Progress) Done() int64 {
	if p == nil {
		return 0
	}
	return p.done.Load()
}

// Total returns the bytes the backup archives in all, as far as known.
func (p *Progress) Total() int64 {
	if p == nil {
		return 0
	}
	return max(p.total.Load(), p.done.Load())
}

func (p *Progress) setTotal(n int64) {
	if p != nil {
		p.total.Store(n)
	}
}

// Report writes a progress line to w every interval, starting once delay
// has passed (a short backup prints nothing), until the returned stop is
// called; stop writes the final line of a backup that outlasted delay. On a
// terminal the line is rewritten in place; elsewhere (a log file, --progress
// under systemd) each report is a line of its own.
func (p *Progress) Report(w io.Writer, terminal bool, delay, interval time.Duration) (stop func()) {
	start := time.Now()
	show := func() {
		line := p.line(time.Since(start))
		if terminal {
			// \r and "erase to end of line" rewrite the line in place.
			fmt.Fprintf(w, "\r%s\x1b[K", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		for {
			select {
			case <-done:
				return
			case <-timer.C:
			}
			show()
			timer.Reset(interval)
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if time.Since(start) >= delay {
			show()
			if terminal {
				fmt.Fprintln(w)
			}
		}
	}
}

// line is one report: "backup: 412.0 MiB / 800.0 MiB (51%), 29.3 MiB/s".
func (p *Progress) line(elapsed time.Duration) string {
	done, total := p.Done(), p.Total()
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	return fmt.Sprintf("backup: %s / %s (%.0f%%), %s/s", mebibytes(float64(done)), mebibytes(float64(total)), pct,
		mebibytes(rate))
}

func mebibytes(n float64) string {
	return fmt.Sprintf("%.1f MiB", n/(1<<20))
}
