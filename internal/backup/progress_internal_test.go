package backup

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestProgressReport(t *testing.T) {
	line := `backup: 3\.0 MiB / 4\.0 MiB \(75%\), \d+\.\d MiB/s`
	for _, tc := range []struct {
		name     string
		terminal bool
		delay    time.Duration
		want     string // regexp of everything written
	}{
		{name: "not a terminal: lines", delay: 0, want: `^(` + line + `\n)+$`},
		{name: "terminal: one line rewritten in place, ended at stop", terminal: true, delay: 0,
			want: `^(\r` + line + `\x1b\[K)+\n$`},
		{name: "a backup shorter than the delay prints nothing", delay: time.Hour, want: `^$`},
		{name: "nor on a terminal", terminal: true, delay: time.Hour, want: `^$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Progress{}
			p.setTotal(4 << 20)
			if _, err := p.Write(make([]byte, 3<<20)); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			stop := p.Report(&out, tc.terminal, tc.delay, time.Hour)
			stop()
			if !regexp.MustCompile(tc.want).Match(out.Bytes()) {
				t.Errorf("wrote %q, want it to match %q", out.String(), tc.want)
			}
		})
	}
}

// TestProgressNil: a backup without a progress line counts nothing and
// never fails for it.
func TestProgressNil(t *testing.T) {
	var p *Progress
	if n, err := p.Write([]byte("war")); n != 3 || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
	p.setTotal(10)
	if p.Done() != 0 || p.Total() != 0 {
		t.Errorf("nil progress reports %d / %d", p.Done(), p.Total())
	}
	if !strings.HasPrefix((&Progress{}).line(0), "backup: 0.0 MiB / 0.0 MiB (100%)") {
		t.Errorf("empty progress line %q", (&Progress{}).line(0))
	}
}
