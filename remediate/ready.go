package remediate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
)

// Small wars are ready in milliseconds; a JVM's start takes seconds.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 250 * time.Millisecond
)

type verdict struct {
	ready     bool
	abandoned bool // the engine is shutting down
	gone      bool // the process is gone
	reason    Reason
	detail    string
}

// waitReady polls until the child answers 200, failing early on its exit,
// Jetty's failure lines, or a non-200 answer after "Started @" (Jetty 9.4
// serves 503 for a war it failed to deploy).
func (e *Engine) waitReady(ctx context.Context, c *child, port int) verdict {
	timeout := time.NewTimer(e.cfg.StartTimeout)
	defer timeout.Stop()
	output := &logScanner{path: c.logPath, offset: c.offset}
	for wait := firstPoll; ; wait = min(wait*3/2, maxPoll) {
		poll := time.NewTimer(wait)
		select {
		case <-c.exited:
			poll.Stop()
			output.scan(true)
			if output.reason != "" {
				return verdict{gone: true, reason: output.reason, detail: output.verdict}
			}
			detail := c.exitStatus()
			if output.last != "" {
				detail += " (" + output.last + ")"
			}
			return verdict{gone: true, reason: ReasonExited, detail: detail}
		case <-ctx.Done():
			poll.Stop()
			return verdict{abandoned: true}
		case <-timeout.C:
			poll.Stop()
			return verdict{reason: ReasonNotReady, detail: fmt.Sprintf("%s did not answer 200 within %s", e.cfg.ProbePath, e.cfg.StartTimeout)}
		case <-poll.C:
		}
		if output.scan(false); output.reason != "" {
			return verdict{reason: output.reason, detail: output.verdict}
		}
		r := e.probe(ctx, port)
		// Whatever answers must be the process just started.
		if r.Err != nil || !e.procs.ListensOn(ctx, c.pid, port) || c.hasExited() {
			continue
		}
		if r.Success {
			return verdict{ready: true}
		}
		if output.started {
			return verdict{reason: ReasonNotServing, detail: fmt.Sprintf("%s answered %d after Jetty started", e.cfg.ProbePath, r.StatusCode)}
		}
	}
}

// waitServing is waitReady for a java the engine did not start.
func (e *Engine) waitServing(ctx context.Context, proc procid.Process, id procid.Identity, port int) verdict {
	deadline := time.Now().Add(e.cfg.StartTimeout)
	for wait := firstPoll; ; wait = min(wait*3/2, maxPoll) {
		now := e.procs.Inspect(proc.PID, id)
		if now.Status != procid.StatusRunning || now.CreateTime != proc.CreateTime {
			return verdict{gone: true, reason: ReasonExited, detail: fmt.Sprintf("PID %d is gone", proc.PID)}
		}
		if e.probe(ctx, port).Success && e.procs.ListensOn(ctx, proc.PID, port) {
			return verdict{ready: true}
		}
		if time.Now().After(deadline) {
			detail := fmt.Sprintf("PID %d did not answer %s with 200 within %s", proc.PID, e.cfg.ProbePath, e.cfg.StartTimeout)
			return verdict{reason: ReasonUnresponsive, detail: detail}
		}
		select {
		case <-ctx.Done():
			return verdict{abandoned: true}
		case <-time.After(wait):
		}
	}
}

func (e *Engine) probe(ctx context.Context, port int) probe.Result {
	return probe.Ping(ctx, port, e.cfg.ProbePath, e.cfg.ProbeTimeout)
}

// logScanner reads a start's log for an early verdict, as Steam reads its children's output.
type logScanner struct {
	path    string
	offset  int64
	partial []byte
	started bool   // Jetty said "Started @"
	reason  Reason // set by the first line that says the start failed
	verdict string // that line
	last    string // the last line, for the journal
}

// maxScan bounds one scan and maxLine a line: a flooding child must not stall us.
const (
	maxScan = 1 << 20
	maxLine = 64 << 10
)

// scan reads what was appended; final: the process exited, its last line is complete.
func (s *logScanner) scan(final bool) {
	f, err := os.Open(s.path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 32<<10)
	for read := 0; read < maxScan; {
		n, err := f.ReadAt(buf, s.offset)
		s.offset += int64(n)
		read += n
		s.consume(buf[:n])
		if err != nil || n == 0 {
			break
		}
	}
	if final && len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}

func (s *logScanner) consume(b []byte) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) > maxLine {
		s.line(string(s.partial))
		s.partial = nil
	}
}

func (s *logScanner) line(l string) {
	l = strings.TrimSpace(l)
	if l == "" {
		return
	}
	if len(l) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		l = l[:cut] + "…"
	}
	s.last = l
	reason, started := jettyVerdict(l)
	s.started = s.started || started
	if s.reason == "" && reason != "" {
		s.reason, s.verdict = reason, l
	}
}

// jettyLine is Jetty's StdErrLog: [time:]LEVEL:logger:thread: message (the fake java omits logger and thread).
var jettyLine = regexp.MustCompile(`^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+:)?(?:INFO|WARN):(?:([\w.$]+):[^:]*:)? ?(.*)$`)

var startedAt = regexp.MustCompile(`^Started @\d+ms$`)

// jettyVerdict matches Jetty's own lines by logger and message from the
// line's start: a model's name appears inside Jetty's lines and must never
// decide a start.
func jettyVerdict(l string) (reason Reason, started bool) {
	if strings.HasPrefix(l, "java.net.BindException: ") || strings.HasPrefix(l, "Caused by: java.net.BindException: ") {
		return ReasonAddressInUse, false
	}
	m := jettyLine.FindStringSubmatch(l)
	if m == nil {
		return "", false
	}
	logger, msg := m[1], m[2]
	from := func(want string) bool { return logger == "" || logger == want }
	switch {
	case from("oejs.Server") && startedAt.MatchString(msg):
		return "", true
	case from("oejw.WebAppContext") && strings.HasPrefix(msg, "Failed startup of context "):
		return ReasonDeployFailed, false
	case logger == "oejuc.AbstractLifeCycle" && strings.HasPrefix(msg, "FAILED "):
		if strings.Contains(msg, ": java.io.IOException: Failed to bind to ") {
			return ReasonAddressInUse, false
		}
		return ReasonFailedLine, false
	}
	return "", false
}
