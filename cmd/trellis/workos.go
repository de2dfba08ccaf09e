package main

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/trellis-authz/trellis/internal/workos"
	"github.com/trellis-authz/trellis/internal/workosdb"
)

// withWorkOS also serves the WorkOS-compatible API on every path of
// workos.PathPrefixes, next to the native API: over the PostgreSQL store
// when there is one (pg non-nil), else with noDatabase.
func withWorkOS(next http.Handler, c serveConfig, pg *pgSource, d workos.Decider, apiKeys []string, log *slog.Logger) (http.Handler, error) {
	var api http.Handler = http.HandlerFunc(noDatabase)
	if pg != nil {
		h, err := workos.New(workos.Config{
			Store: workosdb.New(pg.store), Replays: workosdb.NewReplays(pg.store), Decider: d, APIKeys: apiKeys,
			DefaultRoleSlug: c.DefaultRole, MaxBodyBytes: c.MaxBodyBytes, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		if len(apiKeys) == 0 {
			log.Warn("the WorkOS-compatible API refuses every request: give --api-key (TRELLIS_API_KEYS) for its clients")
		}
		api = h
	}
	mux := http.NewServeMux()
	mux.Handle("/", next)
	for _, p := range workos.PathPrefixes {
		mux.Handle(p, api)
	}
	return mux, nil
}

// noDatabase answers the WorkOS-compatible routes of a server without
// --database-url. They need a database to write to, so they answer 501 in
// WorkOS's error shape: not 503, which the WorkOS SDKs retry, since
// retrying cannot help.
func noDatabase(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotImplemented)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"code":    "no_database",
		"message": "the WorkOS-compatible API needs --database-url (TRELLIS_DATABASE_URL)",
	})
}
