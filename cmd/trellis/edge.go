package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/edge"
	"github.com/trellis-authz/trellis/internal/httpapi"
	"github.com/trellis-authz/trellis/internal/token"
)

// edgeConfig is everything `trellis edge` is configured with.
type edgeConfig struct {
	Addr              string
	BundleURL         string
	BundleToken       string
	VerificationKey   string
	VerificationKeyID string
	VerificationAlg   string
	Scope             string
	AllowUnsigned     bool
	PersistDir        string
	LongPoll          time.Duration
	PollInterval      time.Duration

	tokenFlags
	decisionFlags
}

func edgeCommand(run func(context.Context, edgeConfig, io.Writer, io.Writer) error) *cobra.Command {
	return configCommand("edge", "answer decisions offline from bundles pulled from a Trellis server",
		"Answer decisions offline from a signed bundle pulled from a Trellis server (same API as serve).",
		(*edgeConfig).define, (*edgeConfig).check, run)
}

func runEdge(ctx context.Context, c edgeConfig, _, stderr io.Writer) error {
	return runEdgeNode(ctx, c, stderr, nil)
}

func (c *edgeConfig) define(fs *pflag.FlagSet) {
	defineConfig(fs)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8181", "listen address")
	fs.StringVar(&c.BundleURL, "bundle-url", "", "bundle URL, e.g. https://trellis.internal/bundles/trellis.tar.gz or …/bundles/orgs/<org_id>.tar.gz")
	fs.StringVar(&c.BundleToken, "bundle-token", "", "API key of the bundle server, sent as a bearer token")
	fs.StringVar(&c.VerificationKey, "verification-key", "", "PEM public key that bundles must be signed with")
	fs.StringVar(&c.VerificationKeyID, "verification-key-id", "", "id of the verification key (the signer's --bundle-signing-key-id)")
	fs.StringVar(&c.VerificationAlg, "verification-alg", bundle.RS256, "RS256 or ES256")
	fs.StringVar(&c.Scope, "scope", "", "signature scope the bundles must carry")
	fs.BoolVar(&c.AllowUnsigned, "allow-unsigned", false, "accept unsigned bundles (no --verification-key); only on a trusted network")
	fs.StringVar(&c.PersistDir, "persist-dir", "", "directory keeping the last good bundle, activated at start without the server")
	fs.DurationVar(&c.LongPoll, "long-poll", 30*time.Second, "long-polling wait asked of the server (0: plain polling)")
	fs.DurationVar(&c.PollInterval, "poll-interval", 10*time.Second, "delay between polls when the server does not long-poll")
	c.tokenFlags.register(fs)
	c.decisionFlags.register(fs)
}

func (c *edgeConfig) check() error {
	if err := c.tokenFlags.validate(); err != nil {
		return err
	}
	if err := c.decisionFlags.validate(); err != nil {
		return err
	}
	switch {
	case c.BundleURL == "" && c.PersistDir == "":
		return errors.New("--bundle-url is required (or --persist-dir holding a persisted bundle)")
	case c.VerificationKey == "" && !c.AllowUnsigned:
		return errors.New("--verification-key is required: an edge only activates bundles it can verify (or pass --allow-unsigned on a trusted network)")
	case c.VerificationKey != "" && c.VerificationKeyID == "":
		return errors.New("--verification-key-id is required with --verification-key")
	case c.VerificationAlg != bundle.RS256 && c.VerificationAlg != bundle.ES256:
		return fmt.Errorf("--verification-alg %q: use RS256 or ES256", c.VerificationAlg)
	case c.LongPoll < 0 || c.PollInterval <= 0:
		return errors.New("--long-poll must not be negative and --poll-interval must be positive")
	}
	return nil
}

// edgeService is a wired edge: the node and its HTTP handler.
type edgeService struct {
	node    *edge.Node
	handler http.Handler
}

func newEdgeService(ctx context.Context, c edgeConfig, log *slog.Logger) (*edgeService, error) {
	ecfg := edge.Config{
		URL: c.BundleURL, Token: c.BundleToken, PersistDir: c.PersistDir,
		LongPoll: c.LongPoll, PollInterval: c.PollInterval, Logger: log,
	}
	if c.LongPoll == 0 {
		ecfg.LongPoll = -1
	}
	if c.VerificationKey != "" {
		pem, err := os.ReadFile(c.VerificationKey)
		if err != nil {
			return nil, fmt.Errorf("read the verification key: %w", err)
		}
		ecfg.Verification = &bundle.Verification{PublicKey: pem, KeyID: c.VerificationKeyID, Algorithm: c.VerificationAlg, Scope: c.Scope}
	} else {
		log.Warn("bundle signatures are not verified (--allow-unsigned)")
	}
	node, err := edge.New(ecfg)
	if err != nil {
		return nil, err
	}
	var verifier authz.Verifier
	if c.hasJWKS() {
		v, err := token.New(ctx, c.tokenFlags.config(log))
		if err != nil {
			return nil, err
		}
		verifier = v
	} else {
		log.Info("token layer off: no --jwks-url or --jwks-file; only membership subjects (with an API key) are answered")
	}
	as, err := authz.New(authz.Config{Engine: node, Tokens: verifier, MaxWait: c.MaxWait, MaxBatch: c.MaxBatch})
	if err != nil {
		return nil, err
	}
	var decisionLog *slog.Logger
	if c.DecisionLog {
		decisionLog = log.With("log", "decision")
	}
	h, err := httpapi.New(httpapi.Config{
		Service: as, APIKeys: c.APIKeys, RequireAPIKey: c.RequireAPIKey,
		Logger: log, DecisionLog: decisionLog, Ready: node.Ready,
	})
	if err != nil {
		return nil, err
	}
	return &edgeService{node: node, handler: h}, nil
}

// runEdgeNode serves until ctx ends. When listening is non-nil it receives
// the bound address once the edge serves (tests use port 0).
func runEdgeNode(ctx context.Context, c edgeConfig, stderr io.Writer, listening chan<- string) error {
	log := newLogger(stderr, c.LogLevel)
	svc, err := newEdgeService(ctx, c, log)
	if err != nil {
		return err
	}
	svc.node.Start(ctx)
	return serveHTTP(ctx, c.Addr, svc.handler, log, func(addr string) error {
		log.Info("edge listening", "addr", addr, "bundle_url", c.BundleURL)
		if listening != nil {
			listening <- addr
		}
		return nil
	}, svc.node.Run)
}
