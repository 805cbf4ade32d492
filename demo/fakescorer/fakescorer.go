// Package fakescorer is a stand-in for a deployment's JVM, run as "java"
// with Steam's argv so that processes start and die in milliseconds. The war
// it is given (key=value lines; a real zip runs normally) says how it
// behaves, so a restart behaves the same:
//
//	mode=normal             serve until SIGINT/SIGTERM (the default)
//	mode=crash_at_start     print an error and exit 1 before listening
//	mode=crash_after_ready  serve, then exit 1 after crash_after
//	mode=never_ready        run without ever listening
//	mode=unavailable        listen, but /ping answers 503 forever
//	mode=failed             print jetty's FAILED line and keep running, not listening
//	ready_after=300ms       wait this long before listening
//	ping_delay=500ms        answer /ping only after this long (a slow but live JVM)
//	crash_after=1s          for crash_after_ready
//	ignore_sigint=true      survive SIGINT (only SIGKILL stops it)
package fakescorer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Behaviour is what a war asks the fake scorer to do.
type Behaviour struct {
	Mode         string
	ReadyAfter   time.Duration
	CrashAfter   time.Duration
	IgnoreSIGINT bool
	PingDelay    time.Duration
}

// WarContent renders b as the contents of a fake war file.
func (b Behaviour) WarContent() string {
	var sb strings.Builder
	mode := b.Mode
	if mode == "" {
		mode = "normal"
	}
	fmt.Fprintf(&sb, "mode=%s\n", mode)
	if b.ReadyAfter > 0 {
		fmt.Fprintf(&sb, "ready_after=%s\n", b.ReadyAfter)
	}
	if b.CrashAfter > 0 {
		fmt.Fprintf(&sb, "crash_after=%s\n", b.CrashAfter)
	}
	if b.IgnoreSIGINT {
		sb.WriteString("ignore_sigint=true\n")
	}
	if b.PingDelay > 0 {
		fmt.Fprintf(&sb, "ping_delay=%s\n", b.PingDelay)
	}
	return sb.String()
}

func readBehaviour(r io.Reader) (Behaviour, error) {
	b := Behaviour{Mode: "normal", CrashAfter: time.Second}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "mode":
			b.Mode = v
		case "ready_after":
			b.ReadyAfter, err = time.ParseDuration(v)
		case "crash_after":
			b.CrashAfter, err = time.ParseDuration(v)
		case "ignore_sigint":
			b.IgnoreSIGINT, err = strconv.ParseBool(v)
		case "ping_delay":
			b.PingDelay, err = time.ParseDuration(v)
		}
		if err != nil {
			return b, fmt.Errorf("war line %q: %w", sc.Text(), err)
		}
	}
	return b, sc.Err()
}

// parseArgs reads [jvm options] -jar <jar> [--name value ...] <war>.
func parseArgs(args []string) (port int, war string, err error) {
	i := 0
	for i < len(args) && args[i] != "-jar" {
		i++
	}
	if i+1 >= len(args) {
		return 0, "", errors.New("usage: java [options] -jar jetty-runner.jar --port N app.war")
	}
	rest := args[i+2:]
	for j := 0; j < len(rest); j++ {
		switch {
		case rest[j] == "--port" && j+1 < len(rest):
			port, err = strconv.Atoi(rest[j+1])
			j++
		case strings.HasPrefix(rest[j], "--") && j+1 < len(rest):
			j++
		default:
			war = rest[j]
		}
		if err != nil {
			return 0, "", fmt.Errorf("bad --port: %w", err)
		}
	}
	if port == 0 || war == "" {
		return 0, "", errors.New("need --port N and a war")
	}
	return port, war, nil
}

// Main logs as jetty-runner does: the remediator reads those lines.
func Main(args []string) int {
	begin := time.Now()
	port, war, err := parseArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 2
	}
	f, err := os.Open(war)
	if err != nil {
		fmt.Fprintf(os.Stderr, "java.io.FileNotFoundException: %s\n", war)
		return 1
	}
	b, err := readBehaviour(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}

	sigs := make(chan os.Signal, 1)
	if b.IgnoreSIGINT {
		signal.Ignore(syscall.SIGINT)
		signal.Notify(sigs, syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	}
	fmt.Printf("INFO: Runner: jetty-runner (fake) pid %d, port %d, war %s\n", os.Getpid(), port, war)

	switch b.Mode {
	case "crash_at_start":
		fmt.Fprintln(os.Stderr, "java.lang.OutOfMemoryError: fake crash at start")
		return 1
	case "failed":
		fmt.Println("WARN: Failed startup of context o.e.j.w.WebAppContext: FAILED")
		<-sigs
		return 0
	case "never_ready":
		<-sigs
		return 0
	}

	select {
	case <-time.After(b.ReadyAfter):
	case <-sigs:
		return 0
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "java.net.BindException: Address already in use (%v)\n", err)
		fmt.Println("FAILED ServerConnector@fake{HTTP/1.1}{0.0.0.0:" + strconv.Itoa(port) + "}")
		return 1
	}
	srv := &http.Server{Handler: handler(b, begin), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("INFO: Started @%dms\n", time.Since(begin).Milliseconds())

	var crash <-chan time.Time
	if b.Mode == "crash_after_ready" {
		crash = time.After(b.CrashAfter)
	}
	select {
	case <-sigs:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		return 0
	case <-crash:
		fmt.Fprintln(os.Stderr, "java.lang.OutOfMemoryError: fake crash after ready")
		return 1
	}
}

func handler(b Behaviour, start time.Time) http.Handler {
	mux := http.NewServeMux()
	counted := &stats{start: start}
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(b.PingDelay):
		case <-r.Context().Done():
			return
		}
		if b.Mode == "unavailable" {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "pong")
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, counted.answer())
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"model": "fake", "pid": os.Getpid()})
	})
	mux.HandleFunc("/predict", func(w http.ResponseWriter, r *http.Request) {
		begin := time.Now()
		writeJSON(w, map[string]any{"labelIndex": 1, "label": "yes", "classProbabilities": []float64{0.27, 0.73}})
		counted.predicted(r.Method, begin)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
