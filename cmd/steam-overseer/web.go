package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// serve runs handler on the listen addresses of flags (with TLS and basic
// auth from --web.config.file) until ctx ends, then shuts down gracefully.
// A listen error, such as a port already taken, is returned at once.
func serve(ctx context.Context, logger *slog.Logger, flags *web.FlagConfig, handler http.Handler) error {
	srv := newServer(handler)
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, flags, logger) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		logger.Info("Shutting down HTTP server")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}

// newServer bounds how long a client may hold a connection without doing
// its part: send its headers, its body (a webhook's JSON is small), or a
// next request. There is no write timeout: a scrape of a thousand
// deployments may take seconds to produce, and the scraper's own timeout
// already bounds it.
func newServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// handleHealth adds Prometheus' own health endpoints: /-/healthy answers 200
// while the process serves, /-/ready 200 until it starts shutting down.
func handleHealth(mux *http.ServeMux, ready func() bool) {
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "Shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
}
