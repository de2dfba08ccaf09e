package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set --addr or TRELLIS_ADDR)", addr, err)
	}
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
