package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/client"
)

// exitError ends the process with code, printing err unless it is nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// clientFlags are the flags of the commands that ask a running server.
type clientFlags struct {
	server, membership, token, org, output string
	keys                                   stringList
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "http://127.0.0.1:8080", "the Trellis server")
	fs.Var(&f.keys, "api-key", "an API key of the server (needed with --membership)")
	fs.StringVar(&f.membership, "membership", "", "the subject: an organization membership (om_…)")
	fs.StringVar(&f.token, "token", "", "the subject: a session token (JWT)")
	fs.StringVar(&f.org, "organization", "", "the organization of type:external_id resources (default: the subject's)")
	fs.StringVar(&f.output, "output", "human", "human or json (the server's answer)")
}

// parseClient parses a client command's flags and positional arguments
// (exactly nargs of them, named by names).
func parseClient(fs *flag.FlagSet, f *clientFlags, args []string, names ...string) (*client.Client, []string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != len(names) {
		return nil, nil, fmt.Errorf("trellis %s: give %s (got %d arguments)", fs.Name(), strings.Join(names, " and "), len(pos))
	}
	if f.output != "human" && f.output != "json" {
		return nil, nil, fmt.Errorf("--output %q: give human or json", f.output)
	}
	c := &client.Client{Server: f.server}
	if len(f.keys) > 0 {
		c.APIKey = f.keys[0]
	}
	return c, pos, nil
}

func (f *clientFlags) subject() (client.Subject, error) {
	switch {
	case f.membership != "" && f.token != "":
		return client.Subject{}, errors.New("give --membership or --token, not both")
	case f.membership == "" && f.token == "":
		return client.Subject{}, errors.New("give the subject: --membership om_… or --token JWT")
	}
	return client.Subject{Membership: f.membership, Token: f.token}, nil
}

const clientSynopsis = "The subject is --membership om_… (with --api-key) or --token JWT; a resource is an id or type:external_id."

// runCheck asks whether the subject may; it exits 0 allowed, 1 denied, 2
// on any error, for scripts.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := askCheck(ctx, args, stdout, stderr, false); err != nil {
		var denied *exitError
		if errors.As(err, &denied) || errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2, err: err}
	}
	return nil
}

// runExplain shows why the subject may or may not: the grant's path, or
// the denial's cause.
func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return askCheck(ctx, args, stdout, stderr, true)
}

func askCheck(ctx context.Context, args []string, stdout, stderr io.Writer, explain bool) error {
	name, what := "check", "Ask a running server whether a subject may do PERMISSION on RESOURCE; exits 0 allowed, 1 denied, 2 on error."
	if explain {
		name, what = "explain", "Show why a subject may or may not do PERMISSION on RESOURCE: the role, and the path from its resource down, or the cause of the denial."
	}
	var f clientFlags
	fs := newFlagSet(name, "Usage: trellis "+name+" [flags] PERMISSION RESOURCE\n\n"+what+"\n"+clientSynopsis, stderr)
	f.register(fs)
	c, pos, err := parseClient(fs, &f, args, "PERMISSION", "RESOURCE")
	if err != nil {
		return err
	}
	sub, err := f.subject()
	if err != nil {
		return err
	}
	res, err := client.Resource(pos[1], f.org)
	if err != nil {
		return err
	}
	a, raw, err := c.Check(ctx, sub, pos[0], res, explain)
	if err != nil {
		return err
	}
	switch {
	case f.output == "json":
		err = writeRaw(stdout, raw)
	case explain:
		err = client.WriteExplain(stdout, sub, pos[0], pos[1], a)
	default:
		err = client.WriteCheck(stdout, sub, pos[0], pos[1], a)
	}
	if err == nil && !a.Allowed && !explain {
		return &exitError{code: 1}
	}
	return err
}

func writeRaw(w io.Writer, raw json.RawMessage) error {
	_, err := fmt.Fprintln(w, strings.TrimSpace(string(raw)))
	return err
}

const listSynopsis = `Usage: trellis list resources [flags] PERMISSION   (--type T, --parent RESOURCE)
       trellis list memberships [flags] PERMISSION RESOURCE

Lists, one id a line, every resource the subject may act on with PERMISSION,
or every membership that may act on RESOURCE with it (API key required).`

func runList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "resources" && args[0] != "memberships") {
		return subcommand(args, "list", "resources or memberships", listSynopsis, stderr)
	}
	var f clientFlags
	var typ, parent string
	fs := newFlagSet("list "+args[0], "List what a permission reaches.\n"+clientSynopsis, stderr)
	f.register(fs)
	var ids []string
	if args[0] == "resources" {
		fs.StringVar(&typ, "type", "", "only resources of this type")
		fs.StringVar(&parent, "parent", "", "only resources under this one (any depth)")
		c, pos, err := parseClient(fs, &f, args[1:], "PERMISSION")
		if err != nil {
			return err
		}
		sub, err := f.subject()
		if err != nil {
			return err
		}
		var p *authz.ResourceRef
		if parent != "" {
			ref, err := client.Resource(parent, f.org)
			if err != nil {
				return err
			}
			p = &ref
		}
		if ids, err = c.ListResources(ctx, sub, pos[0], typ, p, f.org); err != nil {
			return err
		}
	} else {
		c, pos, err := parseClient(fs, &f, args[1:], "PERMISSION", "RESOURCE")
		if err != nil {
			return err
		}
		res, err := client.Resource(pos[1], f.org)
		if err != nil {
			return err
		}
		if ids, err = c.ListMemberships(ctx, pos[0], res); err != nil {
			return err
		}
	}
	return writeList(stdout, f.output, ids)
}

func writeList(w io.Writer, output string, items []string) error {
	if output == "json" {
		return json.NewEncoder(w).Encode(nonNilStrings(items))
	}
	for _, it := range items {
		if _, err := fmt.Fprintln(w, it); err != nil {
			return err
		}
	}
	return nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func runPermissions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f clientFlags
	fs := newFlagSet("permissions", "Usage: trellis permissions [flags] RESOURCE\n\nPrint the subject's effective permissions on RESOURCE, one a line.\n"+clientSynopsis, stderr)
	f.register(fs)
	c, pos, err := parseClient(fs, &f, args, "RESOURCE")
	if err != nil {
		return err
	}
	sub, err := f.subject()
	if err != nil {
		return err
	}
	res, err := client.Resource(pos[0], f.org)
	if err != nil {
		return err
	}
	p, raw, err := c.Permissions(ctx, sub, res)
	if err != nil {
		return err
	}
	if f.output == "json" {
		return writeRaw(stdout, raw)
	}
	return writeList(stdout, f.output, p.Permissions)
}
