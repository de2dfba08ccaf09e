package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"
)

// decisionFlags are the decision-API settings `trellis serve` and
// `trellis edge` share.
type decisionFlags struct {
	APIKeys       stringList
	RequireAPIKey bool
	MaxBatch      int
	MaxWait       time.Duration
	DecisionLog   bool
	LogLevel      string
}

func (d *decisionFlags) register(fs *flag.FlagSet) {
	fs.Var(&d.APIKeys, "api-key", "API key accepted as 'Authorization: Bearer <key>' (repeatable; the variable is comma-separated)")
	fs.BoolVar(&d.RequireAPIKey, "require-api-key", false, "require an API key on token-subject decision requests too")
	fs.IntVar(&d.MaxBatch, "max-batch", 1000, "most checks in one batch request")
	fs.DurationVar(&d.MaxWait, "max-wait", 5*time.Second, "longest a request waits for the revision it asks for")
	fs.BoolVar(&d.DecisionLog, "decision-log", false, "log every decision (decision_id, subject, permission, resource, result, reason, revision)")
	fs.StringVar(&d.LogLevel, "log-level", "info", "debug, info, warn or error")
}

// validate reports the first setting that cannot work.
func (d decisionFlags) validate() error {
	var lvl slog.Level
	switch {
	case d.MaxBatch <= 0:
		return errors.New("--max-batch must be positive")
	case d.MaxWait <= 0:
		return errors.New("--max-wait must be positive")
	case lvl.UnmarshalText([]byte(d.LogLevel)) != nil:
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", d.LogLevel)
	}
	return nil
}
