package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/client"
)

// clientFlags are the flags of the commands that ask a running server.
type clientFlags struct {
	server, membership, token, org, output string
	keys                                   []string
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.server, "server", "http://127.0.0.1:8080", "the Trellis server")
	fs.StringArrayVar(&f.keys, "api-key", nil, "an API key of the server (needed with --membership)")
	fs.StringVar(&f.membership, "membership", "", "the subject: an organization membership (om_…)")
	fs.StringVar(&f.token, "token", "", "the subject: a session token (JWT)")
	fs.StringVar(&f.org, "organization", "", "the organization of type:external_id resources (default: the subject's)")
	fs.StringVar(&f.output, "output", "human", "human or json (the server's answer)")
}

// client returns the client of the server the flags name.
func (f *clientFlags) client() (*client.Client, error) {
	if f.output != "human" && f.output != "json" {
		return nil, fmt.Errorf("--output %q: give human or json", f.output)
	}
	c := &client.Client{Server: f.server}
	if len(f.keys) > 0 {
		c.APIKey = f.keys[0]
	}
	return c, nil
}

// prepare returns the client, the subject and the resource (an id or
// type:external_id) that the flags and ref name.
func (f *clientFlags) prepare(ref string) (*client.Client, client.Subject, authz.ResourceRef, error) {
	c, err := f.client()
	if err != nil {
		return nil, client.Subject{}, authz.ResourceRef{}, err
	}
	sub, err := f.subject()
	if err != nil {
		return nil, client.Subject{}, authz.ResourceRef{}, err
	}
	res, err := client.Resource(ref, f.org)
	return c, sub, res, err
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

// checkCommand asks whether the subject may; it exits 0 allowed, 1
// denied, 2 on any error, for scripts.
func checkCommand() *cobra.Command {
	cmd := newCommand("check PERMISSION RESOURCE", "ask a running server whether a subject may; exits 0 allowed, 1 denied, 2 error",
		"Ask a running server whether a subject may do PERMISSION on RESOURCE; exits 0 allowed, 1 denied, 2 on error.\n"+clientSynopsis,
		func(fs *pflag.FlagSet) runFunc { return askCheck(fs, false) })
	cmd.Args = exactArgs("PERMISSION", "RESOURCE")
	cmd.Annotations = map[string]string{errorExit: "2"}
	return cmd
}

// explainCommand shows why the subject may or may not: the grant's path,
// or the denial's cause.
func explainCommand() *cobra.Command {
	cmd := newCommand("explain PERMISSION RESOURCE", "show why a subject may or may not: the grant's path, or the denial's cause",
		"Show why a subject may or may not do PERMISSION on RESOURCE: the role, and the path from its resource down, or the cause of the denial.\n"+clientSynopsis,
		func(fs *pflag.FlagSet) runFunc { return askCheck(fs, true) })
	cmd.Args = exactArgs("PERMISSION", "RESOURCE")
	return cmd
}

func askCheck(fs *pflag.FlagSet, explain bool) runFunc {
	var f clientFlags
	f.register(fs)
	return func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
		c, sub, res, err := f.prepare(pos[1])
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
}

func writeRaw(w io.Writer, raw json.RawMessage) error {
	_, err := fmt.Fprintln(w, strings.TrimSpace(string(raw)))
	return err
}

func listCommand() *cobra.Command {
	resources := newCommand("resources PERMISSION", "list every resource the subject may act on with PERMISSION",
		"List, one id a line, every resource the subject may act on with PERMISSION.\n"+clientSynopsis,
		func(fs *pflag.FlagSet) runFunc {
			var f clientFlags
			var typ, parent string
			f.register(fs)
			fs.StringVar(&typ, "type", "", "only resources of this type")
			fs.StringVar(&parent, "parent", "", "only resources under this one (any depth)")
			return func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
				c, err := f.client()
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
				ids, err := c.ListResources(ctx, sub, pos[0], typ, p, f.org)
				if err != nil {
					return err
				}
				return writeList(stdout, f.output, ids)
			}
		})
	resources.Args = exactArgs("PERMISSION")
	memberships := newCommand("memberships PERMISSION RESOURCE", "list every membership that may act on RESOURCE with PERMISSION",
		"List, one id a line, every membership that may act on RESOURCE with PERMISSION (API key required).\n"+clientSynopsis,
		func(fs *pflag.FlagSet) runFunc {
			var f clientFlags
			f.register(fs)
			return func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
				c, err := f.client()
				if err != nil {
					return err
				}
				res, err := client.Resource(pos[1], f.org)
				if err != nil {
					return err
				}
				ids, err := c.ListMemberships(ctx, pos[0], res)
				if err != nil {
					return err
				}
				return writeList(stdout, f.output, ids)
			}
		})
	memberships.Args = exactArgs("PERMISSION", "RESOURCE")
	return newGroup("list", "list what a permission reaches on a running server (list resources PERMISSION, list memberships PERMISSION RESOURCE)", resources, memberships)
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

func permissionsCommand() *cobra.Command {
	cmd := newCommand("permissions RESOURCE", "print a subject's effective permissions on a resource",
		"Print the subject's effective permissions on RESOURCE, one a line.\n"+clientSynopsis,
		func(fs *pflag.FlagSet) runFunc {
			var f clientFlags
			f.register(fs)
			return func(ctx context.Context, pos []string, stdout, _ io.Writer) error {
				c, sub, res, err := f.prepare(pos[0])
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
		})
	cmd.Args = exactArgs("RESOURCE")
	return cmd
}
