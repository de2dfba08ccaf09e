package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/trellis-authz/trellis/internal/requestid"
)

// newLogger returns the JSON logger every command writes to stderr. level
// was validated when the flags were parsed.
func newLogger(stderr io.Writer, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	return slog.New(requestid.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl})))
}

// serveHTTP serves h on addr until ctx ends, or until the server or one of
// the background loops fails, then shuts down gracefully. started runs once
// the server accepts connections, with the bound address (port 0 picks one).
// Background loops get a context that ends with the server.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger, started func(addr string) error, background ...func(context.Context) error) error {
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	return serveOn(ctx, ln, h, log, started, background...)
}

// listen binds addr, saying which address failed and how to pick another.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another process on it? choose another with --addr)", addr, err)
	}
	return ln, nil
}

// serveOn is serveHTTP on a bound listener, which it closes.
func serveOn(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, started func(addr string) error, background ...func(context.Context) error) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1+len(background))
	go func() { errc <- srv.Serve(ln) }()
	bgCtx, stop := context.WithCancel(ctx)
	defer stop()
	for _, run := range background {
		go func() { errc <- run(bgCtx) }()
	}
	if started != nil {
		if err := started(ln.Addr().String()); err != nil {
			_ = srv.Close()
			return err
		}
	}
	select {
	case err := <-errc:
		if err != nil {
			_ = srv.Close()
			return err
		}
		<-ctx.Done()
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// swapHandler serves whichever handler was set last; safe for concurrent
// use.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// loading answers while the data loads: live on /health, and 503
// not_ready with Retry-After on everything else (never a deny).
var loading = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/health" {
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
		return
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `{"code":"not_ready","message":"the server is loading its data: this is no decision; retry later"}`+"\n")
})
