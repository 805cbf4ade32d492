package backup

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress counts archived bytes against the total, known once the model
// folder is listed. A nil *Progress counts nothing.
type Progress struct {
	done, total atomic.Int64
}

// Write counts len(b) bytes archived.
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

// Total returns the bytes to archive, as far as known.
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

// Report writes a line every interval once delay has passed (a short backup
// prints nothing), rewriting it in place on a terminal; stop writes the last.
func (p *Progress) Report(w io.Writer, terminal bool, delay, interval time.Duration) (stop func()) {
	start := time.Now()
	show := func() {
		line := p.line(time.Since(start))
		if terminal {
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
