package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/devmode"
)

const tokenSynopsis = `Prints a session token for a membership of the data a "trellis serve --dev"
server serves, minted with its ephemeral key (POST /dev/tokens) with the
claims AuthKit issues for it: org_id, role (its highest-priority
organization role), roles, permissions (their union; --permissions replaces
them), organization_membership_id. Only the JWT goes to stdout:
  TOKEN=$(trellis token mint --server … --api-key … --membership om_bob)`

func tokenCommand() *cobra.Command {
	mint := newCommand("mint", "print a session token minted by a --dev server for a membership of its data", tokenSynopsis, defineMint)
	return newGroup("token", "print a session token minted by a --dev server for a membership of its data (token mint)", mint)
}

func defineMint(fs *pflag.FlagSet) runFunc {
	var server, membership, perms string
	var keys []string
	var ttl time.Duration
	fs.StringVar(&server, "server", "http://127.0.0.1:8080", "the Trellis server (started with --dev)")
	fs.StringArrayVar(&keys, "api-key", nil, "the server's API key (printed by --dev)")
	fs.StringVar(&membership, "membership", "", "the organization membership (om_…) the token is for")
	fs.StringVar(&perms, "permissions", "", "comma-separated permissions claim, replacing the membership's roles' (\"\" keeps those)")
	fs.DurationVar(&ttl, "ttl", devmode.DefaultTTL, fmt.Sprintf("lifetime of the token, at most %s", devmode.MaxTTL))
	return func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
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
}
