package promstack

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWaitReady(t *testing.T) {
	// hung accepts connections and never answers: a program that is up
	// but stuck.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	defer failing.Close()

	for _, tc := range []struct {
		name    string
		url     string
		failed  func() error
		wantErr string
	}{
		{name: "answers 200", url: ok.URL},
		{name: "answers 503", url: failing.URL, wantErr: "did not answer"},
		{name: "program exited", url: failing.URL, failed: func() error { return errors.New("prometheus exited") }, wantErr: "prometheus exited"},
		{name: "accepts and never answers", url: "http://" + hung.Addr().String() + "/", wantErr: "did not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Without a per-request timeout a hung listener keeps WaitReady
			// past its deadline for good; the guard makes that a failure
			// rather than a test binary that never ends.
			errc := make(chan error, 1)
			go func() { errc <- WaitReady(context.Background(), tc.url, 500*time.Millisecond, tc.failed) }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(time.Minute):
				t.Fatalf("WaitReady(%s) still waiting a minute after its 500ms deadline", tc.url)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("WaitReady(%s) = %v, want an error containing %q", tc.url, err, tc.wantErr)
			}
		})
	}
}
