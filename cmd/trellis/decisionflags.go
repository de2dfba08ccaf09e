package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// decisionFlags are the decision-API settings `trellis serve` and
// `trellis edge` share.
type decisionFlags struct {
	APIKeys       []string
	APIKeyFile    string
	RequireAPIKey bool
	MaxBatch      int
	MaxWait       time.Duration
	DecisionLog   bool
	LogLevel      string
}

func (d *decisionFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&d.APIKeys, "api-key", nil, fmt.Sprintf("API key accepted as 'Authorization: Bearer <key>', at least %d characters (repeatable; the variable is comma-separated)", minAPIKeyLen))
	fs.StringVar(&d.APIKeyFile, "api-key-file", "", "file of API keys, one a line (blank lines and # comments ignored), added to --api-key: keeps keys off the command line")
	fs.BoolVar(&d.RequireAPIKey, "require-api-key", false, "require an API key on token-subject decision requests too")
	fs.IntVar(&d.MaxBatch, "max-batch", 1000, "most checks in one batch request")
	fs.DurationVar(&d.MaxWait, "max-wait", 5*time.Second, "longest a request waits for the revision it asks for")
	fs.BoolVar(&d.DecisionLog, "decision-log", false, "log every decision (decision_id, subject, permission, resource, result, reason, revision)")
	fs.StringVar(&d.LogLevel, "log-level", "info", "debug, info, warn or error")
}

// minAPIKeyLen is the shortest API key accepted: a key is a password.
const minAPIKeyLen = 16

// validate reports the first setting that cannot work. It reads
// --api-key-file into APIKeys.
func (d *decisionFlags) validate() error {
	if d.APIKeyFile != "" {
		raw, err := os.ReadFile(d.APIKeyFile)
		if err != nil {
			return fmt.Errorf("--api-key-file: %w", err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				d.APIKeys = append(d.APIKeys, line)
			}
		}
	}
	for i, k := range d.APIKeys {
		if n := len(k); n < minAPIKeyLen {
			return fmt.Errorf("API key #%d has %d characters: use at least %d, e.g. openssl rand -hex 16", i+1, n, minAPIKeyLen)
		}
	}
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
