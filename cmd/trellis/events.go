package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/events"
)

// serveEventsFlags configure the change stream of `trellis serve`
// (PostgreSQL only).
type serveEventsFlags struct {
	Retention time.Duration
	Webhooks  bool
}

func (f *serveEventsFlags) register(fs *pflag.FlagSet) {
	fs.DurationVar(&f.Retention, "event-retention", events.DefaultRetention, "how long events are kept (GET /events, /v1/watch); events an enabled webhook endpoint has not received are kept until it has. The change log followers read is kept as long (a follower further behind loads a snapshot)")
	fs.BoolVar(&f.Webhooks, "webhooks", true, "deliver webhooks from this instance (several instances share the work, each event delivered once)")
}

func (f serveEventsFlags) validate() error {
	if f.Retention <= 0 {
		return errors.New("--event-retention must be positive")
	}
	return nil
}

// withEvents also serves the change stream's routes (events.Paths): with
// PostgreSQL, from its event log, delivering webhooks and pruning in the
// background until the returned stop is called; without, 501 no_database.
func withEvents(next http.Handler, f serveEventsFlags, pg *pgSource, dsn string, apiKeys []string, maxBody int64, log *slog.Logger) (http.Handler, func(), error) {
	var api http.Handler = http.HandlerFunc(noEventLog)
	stop := func() {}
	if pg != nil {
		l := events.NewLog(pg.store.DB())
		waker := &events.Waker{}
		h, err := events.NewHandler(events.HandlerConfig{Log: l, Authorize: apiKeyCheck(apiKeys), Waker: waker, MaxBodyBytes: maxBody, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		api = h
		readOnly, err := pg.store.InRecovery(context.Background())
		if err != nil {
			return nil, nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		duties := events.Duties{Log: l, DSN: dsn, Waker: waker, Retention: f.Retention, PruneChanges: pg.store.PruneChangesBefore,
			Webhooks: f.Webhooks, ReadOnly: pg.store.InRecovery, Logger: log}
		go func() { duties.Run(ctx, readOnly); close(done) }()
		stop = func() {
			cancel()
			<-done
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", next)
	for _, p := range events.Paths {
		mux.Handle(p, api)
	}
	return mux, stop, nil
}

// noEventLog answers the change stream's routes without --database-url:
// a data file never changes while served, so there is no stream (501, not
// 503: retrying cannot help).
func noEventLog(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotImplemented)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"code":    "no_database",
		"message": "events, webhooks and the watch need --database-url (TRELLIS_DATABASE_URL): a data file has no change stream",
	})
}

const eventsSynopsis = `Prints the change stream of a Trellis server (GET /v1/watch), one line an
event: position, commit time, type, organization (- for shared data) and
entity id. It follows new events until interrupted, resuming by itself
after a dropped connection.`

func eventsCommand() *cobra.Command {
	tail := newCommand("tail", "print the change stream, one line an event", eventsSynopsis, defineTail)
	return newGroup("events", "print the change stream of a server, one line an event (events tail)", tail)
}

func defineTail(fs *pflag.FlagSet) runFunc {
	var cfg events.TailConfig
	var kinds string
	var keys []string
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the Trellis server")
	fs.StringArrayVar(&keys, "api-key", nil, "an API key of the server")
	fs.Int64Var(&cfg.After, "after", 0, "start after this position (0: the oldest event kept)")
	fs.StringVar(&cfg.OrganizationID, "organization", "", "only this organization's events")
	fs.StringVar(&kinds, "kind", "", "only these entity kinds, comma-separated (organization, membership, permission, role, resource, assignment, resource_type)")
	return func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if len(keys) > 0 {
			cfg.APIKey = keys[0]
		}
		if kinds != "" {
			cfg.Kinds = strings.Split(kinds, ",")
		}
		return events.Tail(ctx, cfg, stdout)
	}
}
