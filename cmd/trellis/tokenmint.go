package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trellis-authz/trellis/internal/devmode"
)

const tokenSynopsis = `Usage: trellis token mint --server URL --api-key KEY --membership om_… [--permissions P,…] [--ttl 1h]

Prints a session token for a membership of the data a "trellis serve --dev"
server serves, minted with its ephemeral key (POST /dev/tokens) with the
claims AuthKit issues for it: org_id, role (its highest-priority
organization role), roles, permissions (their union; --permissions replaces
them), organization_membership_id. Only the JWT goes to stdout:
  TOKEN=$(trellis token mint --server … --api-key … --membership om_bob)`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := subcommand(args, "token", "mint", tokenSynopsis, stderr); err != nil {
		return err
	}
	var server, membership, perms string
	var keys stringList
	var ttl time.Duration
	fs := newFlagSet("token mint", "Print a session token minted by a --dev server for a membership of its data.", stderr)
	fs.StringVar(&server, "server", "http://127.0.0.1:8080", "the Trellis server (started with --dev)")
	fs.Var(&keys, "api-key", "the server's API key (printed by --dev)")
	fs.StringVar(&membership, "membership", "", "the organization membership (om_…) the token is for")
	fs.StringVar(&perms, "permissions", "", "comma-separated permissions claim, replacing the membership's roles' (\"\" keeps those)")
	fs.DurationVar(&ttl, "ttl", devmode.DefaultTTL, fmt.Sprintf("lifetime of the token, at most %s", devmode.MaxTTL))
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case membership == "":
		return errors.New("token mint: --membership om_… is required")
	case len(keys) == 0:
		return errors.New("token mint: --api-key is required (a --dev server prints its key)")
	}
	req := devmode.TokenRequest{MembershipID: membership, TTL: ttl.String()}
	if perms != "" {
		list := strings.Split(perms, ",")
		req.Permissions = &list
	}
	resp, err := devmode.Mint(ctx, &http.Client{Timeout: 10 * time.Second}, server, keys[0], req)
	if err != nil {
		return fmt.Errorf("token mint: %w", err)
	}
	_, err = fmt.Fprintln(stdout, resp.Token)
	return err
}
