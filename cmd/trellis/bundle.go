package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/trellis-authz/trellis/internal/bundle"
	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/progress"
	"github.com/trellis-authz/trellis/internal/token"
)

// bundleConfig is everything `trellis bundle build` is configured with.
type bundleConfig struct {
	Out         string
	DataFile    string
	DatabaseURL string
	Org         string
	Signing     signingFlags
	Keys        keysFlags
	Policy      policyFlags
	Quiet       bool
}

// signingFlags configure bundle signatures (build and serve).
type signingFlags struct {
	Key, KeyID, Alg, Scope string
}

func (s *signingFlags) register(fs *pflag.FlagSet, prefix string) {
	fs.StringVar(&s.Key, prefix+"signing-key", "", "PEM private key (RSA or P-256) that signs bundles; empty: unsigned bundles")
	fs.StringVar(&s.KeyID, prefix+"signing-key-id", "", "key id edges map to the public key (required with a signing key)")
	fs.StringVar(&s.Alg, prefix+"signing-alg", "", "RS256 or ES256 (default: what the key fits)")
	fs.StringVar(&s.Scope, prefix+"scope", "", "signature scope; edges must be configured with the same scope")
}

// signer returns nil when no key is configured.
func (s signingFlags) signer() (*bundle.Signer, error) {
	if s.Key == "" {
		if s.KeyID != "" || s.Scope != "" {
			return nil, errors.New("a signing key id or scope needs a signing key")
		}
		return nil, nil
	}
	pem, err := os.ReadFile(s.Key)
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	return bundle.NewSigner(pem, s.Alg, s.KeyID, s.Scope)
}

// keysFlags say which token verification data a bundle ships for the
// stock-OPA edge (data.trellis_keys): the same settings as the token flags
// of `trellis serve`.
type keysFlags struct {
	JWKSURL, JWKSFile string
	Issuer, Audience  string
	Algorithms        string
	MembershipClaim   string
	Skew              time.Duration
}

func (k *keysFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&k.JWKSURL, "jwks-url", "", "URL of the session token issuer's JWKS, shipped in the bundle for stock-OPA edges")
	fs.StringVar(&k.JWKSFile, "jwks-file", "", "JWKS file, instead of --jwks-url")
	fs.StringVar(&k.Issuer, "issuer", "", "required token issuer (iss) when a JWKS is given")
	fs.StringVar(&k.Audience, "audience", "", "required token audience (aud); empty: not checked")
	fs.StringVar(&k.Algorithms, "algorithms", token.RS256, "comma-separated token algorithms to accept: RS256, ES256")
	fs.StringVar(&k.MembershipClaim, "membership-claim", token.DefaultMembershipClaim, "token claim holding the organization membership id")
	fs.DurationVar(&k.Skew, "token-skew", token.DefaultSkew, "clock skew allowed on exp/nbf/iat")
}

// load reads the JWKS and returns the keys to ship; nil when no JWKS is
// configured (a stock-OPA edge then denies every token).
func (k keysFlags) load(ctx context.Context) (*bundle.Keys, error) {
	if k.JWKSURL == "" && k.JWKSFile == "" {
		return nil, nil
	}
	if k.JWKSURL != "" && k.JWKSFile != "" {
		return nil, errors.New("give --jwks-url or --jwks-file, not both")
	}
	if k.Issuer == "" {
		return nil, errors.New("--issuer is required with a JWKS: tokens from any other issuer must be rejected")
	}
	algs := strings.Split(k.Algorithms, ",")
	for _, a := range algs {
		if a != token.RS256 && a != token.ES256 {
			return nil, fmt.Errorf("--algorithms: %q is not supported: use RS256 or ES256", a)
		}
	}
	jwks, err := readJWKS(ctx, k.JWKSURL, k.JWKSFile)
	if err != nil {
		return nil, err
	}
	return &bundle.Keys{
		Issuer: k.Issuer, Audience: k.Audience, Algorithms: algs, MembershipClaim: k.MembershipClaim,
		SkewSeconds: int64(k.Skew / time.Second), JWKS: jwks,
	}, nil
}

func readJWKS(ctx context.Context, url, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read the JWKS: %w", err)
		}
		return b, nil
	}
	ctx, cancel := context.WithTimeout(ctx, token.DefaultHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch the JWKS: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the JWKS from %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func bundleCommand() *cobra.Command {
	return newGroup("bundle", "build a signed OPA bundle of policies and data (bundle build --out FILE)", bundleBuildCommand(
		func(ctx context.Context, c bundleConfig, _, stderr io.Writer) error {
			return buildBundle(ctx, c, stderr)
		}))
}

func bundleBuildCommand(run func(context.Context, bundleConfig, io.Writer, io.Writer) error) *cobra.Command {
	return configCommand("build", "build a signed OPA bundle of policies and data",
		"Write a signed OPA bundle (policies, data at one revision, .manifest, .signatures.json) to --out.",
		(*bundleConfig).define, (*bundleConfig).check, run)
}

func (c *bundleConfig) define(fs *pflag.FlagSet) {
	fs.StringVar(&c.Out, "out", "", "file to write the gzipped bundle to (required)")
	fs.StringVar(&c.DataFile, "data", "", "YAML or JSON data file; default: the embedded demo dataset")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL to snapshot instead of a data file")
	fs.StringVar(&c.Org, "org", "", "write one organization's bundle: only its data")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress on stderr")
	c.Signing.register(fs, "")
	c.Keys.register(fs)
	c.Policy.register(fs, false)
}

func (c *bundleConfig) check() error {
	switch {
	case c.Out == "":
		return errors.New("--out is required: the file to write the bundle to")
	case c.DataFile != "" && c.DatabaseURL != "":
		return errors.New("give --data or --database-url, not both")
	}
	return nil
}

func buildBundle(ctx context.Context, c bundleConfig, stderr io.Writer) error {
	start := time.Now()
	say := func(format string, args ...any) {
		if !c.Quiet {
			fmt.Fprintf(stderr, "%6.1fs  "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
		}
	}
	// The policies first: an extension that does not compile fails the
	// build before any data is read.
	mods, err := c.Policy.modules()
	if err != nil {
		return err
	}
	if _, err := engine.New(ctx, engine.Options{Modules: mods}); err != nil {
		return err
	}
	signer, err := c.Signing.signer()
	if err != nil {
		return err
	}
	keys, err := c.Keys.load(ctx)
	if err != nil {
		return err
	}
	if keys == nil {
		say("no --jwks-file/--jwks-url: stock-OPA edges will deny every token (membership subjects still work)")
	}
	// Stages slower than a few seconds show a bar on a terminal, log
	// lines otherwise; --quiet shows none.
	stages := progress.NewStages(stderr, newLogger(stderr, "info"))
	if c.Quiet {
		stages = progress.NewStages(nil, nil)
	}
	defer stages.Done()
	stages.Report("reading the data", 0, 0)
	var ds *model.Dataset
	switch {
	case c.DatabaseURL != "":
		store, err := postgres.Open(ctx, c.DatabaseURL, postgres.Config{})
		if err != nil {
			return err
		}
		defer store.Close()
		raw, err := store.Snapshot(ctx)
		if err != nil {
			return err
		}
		if ds, err = raw.Isolate(); err != nil {
			return fmt.Errorf("snapshot at revision %d: %w", raw.Revision, err)
		}
	case c.DataFile != "":
		if ds, err = datafile.LoadIsolated(c.DataFile); err != nil {
			return err
		}
	default:
		ds = datafile.Demo()
	}
	stages.Done()
	say("read %d resources, %d memberships, %d assignments at revision %d", len(ds.Resources), len(ds.Memberships), len(ds.Assignments), ds.Revision)
	for _, q := range ds.Quarantined {
		// Always said: the bundle holds none of its data.
		fmt.Fprintf(stderr, "quarantined, left out of the bundle: %s\n", q)
		if q.Organization == c.Org {
			return fmt.Errorf("organization %s is quarantined: its data breaks a rule of the data model; fix it first", c.Org)
		}
	}
	stages.Report("indexing", 0, 0)
	doc, err := index.Build(ds)
	stages.Done()
	if err != nil {
		return err
	}
	say("indexed")

	if err := os.MkdirAll(filepath.Dir(c.Out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.Out), filepath.Base(c.Out)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	info, err := bundle.Build(ctx, tmp, bundle.Document{Revision: ds.Revision, Data: doc}, bundle.Options{
		Modules: mods, Keys: keys, Signer: signer, Organization: c.Org,
		Progress: stages.Report,
	})
	stages.Done()
	if err == nil {
		err = tmp.Sync()
	}
	if e := tmp.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.Out)
	}
	if err != nil {
		return err
	}
	signed := "unsigned"
	if info.Signed {
		signed = "signed " + signer.Algorithm() + " with key " + signer.KeyID()
	}
	say("wrote %s: revision %s, %d bytes, %s", c.Out, info.Revision, info.Size, signed)
	return nil
}

// engineSource serves bundles from an engine: each snapshot is one export
// of the store, in one store transaction, so it is consistent even while
// incremental changes are applied. The export holds the store, so an
// incremental change (and the decisions behind it) waits: use it only
// where the data does not change (a data file).
type engineSource struct{ *engine.Engine }

// Snapshot implements bundle.Source.
func (s engineSource) Snapshot(ctx context.Context) (bundle.Document, error) {
	doc, err := s.Document(ctx)
	if err != nil {
		return bundle.Document{}, err
	}
	obj, ok := doc.(ast.Object)
	if !ok {
		return bundle.Document{}, fmt.Errorf("snapshot: the data document is %T, not an object", doc)
	}
	rev, err := index.Revision(obj)
	if err != nil {
		return bundle.Document{}, fmt.Errorf("snapshot: %w", err)
	}
	return bundle.Document{Revision: rev, Data: obj}, nil
}

// storeSource serves bundles from PostgreSQL snapshots: building one never
// touches the engine's store, so it never holds decisions back. The engine
// only says when the revision moved.
type storeSource struct {
	*engine.Engine
	store *postgres.Store
}

// Snapshot implements bundle.Source. It holds out the organizations whose
// data breaks a rule, as the follower does (which logs them), so that the
// full bundle records them and their own bundles are not rebuilt.
func (s storeSource) Snapshot(ctx context.Context) (bundle.Document, error) {
	raw, err := s.store.Snapshot(ctx)
	if err != nil {
		return bundle.Document{}, err
	}
	ds, err := raw.Isolate()
	if err != nil {
		return bundle.Document{}, err
	}
	doc, err := index.Build(ds)
	if err != nil {
		return bundle.Document{}, err
	}
	return bundle.Document{Revision: ds.Revision, Data: doc}, nil
}

// serveBundleFlags configure the bundle endpoint of `trellis serve`.
type serveBundleFlags struct {
	Enabled       bool
	Name          string
	Organizations bool
	Signing       signingFlags
}

func (b *serveBundleFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&b.Enabled, "bundles", true, "serve signed OPA bundles at /bundles/{name}.tar.gz to clients holding an API key")
	fs.StringVar(&b.Name, "bundle-name", "trellis", "name of the full bundle: /bundles/<name>.tar.gz")
	fs.BoolVar(&b.Organizations, "bundle-orgs", true, "also serve one organization's bundle at /bundles/orgs/<org_id>.tar.gz")
	b.Signing.register(fs, "bundle-")
}

// withBundles mounts the bundle server in front of next, serving the
// engine's data with the token keys of tcfg shipped for stock-OPA edges.
// Bundles hold every tenant's data, so they need an API key. It returns
// the bundle server too (nil when bundles are off), for policy reloads.
func withBundles(ctx context.Context, next http.Handler, b serveBundleFlags, modules map[string]string, tcfg token.Config, source bundle.Source, apiKeys []string, log *slog.Logger) (http.Handler, *bundle.Server, error) {
	if !b.Enabled {
		return next, nil, nil
	}
	signer, err := b.Signing.signer()
	if err != nil {
		return nil, nil, fmt.Errorf("--bundle-signing-key: %w", err)
	}
	if signer == nil {
		log.Warn("bundles are served unsigned: set --bundle-signing-key and --bundle-signing-key-id so edges can verify them")
	}
	kf := keysFlags{JWKSURL: tcfg.JWKSURL, JWKSFile: tcfg.JWKSFile, Issuer: tcfg.Issuer, Audience: tcfg.Audience,
		Algorithms: strings.Join(tcfg.Algorithms, ","), MembershipClaim: tcfg.MembershipClaim, Skew: tcfg.Skew}
	if kf.MembershipClaim == "" {
		kf.MembershipClaim = token.DefaultMembershipClaim
	}
	if kf.Skew == 0 {
		kf.Skew = token.DefaultSkew
	}
	keys, err := kf.load(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle keys: %w", err)
	}
	if len(apiKeys) == 0 {
		log.Info("bundles need an API key and none is configured (--api-key): /bundles/ answers 401")
	}
	srv, err := bundle.NewServer(bundle.ServerConfig{
		Source:        source,
		Options:       bundle.Options{Modules: modules, Keys: keys, Signer: signer},
		Name:          b.Name,
		Organizations: b.Organizations,
		Authorize:     bundle.BearerKeys(apiKeys),
		Logger:        log,
	})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle("GET /bundles/", srv)
	return mux, srv, nil
}
