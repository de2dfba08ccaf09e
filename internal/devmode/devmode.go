// Package devmode is what `trellis serve --dev` adds to a server: session
// tokens minted with an ephemeral key for the memberships of the data being
// served (POST /dev/tokens, the key's JWKS at GET /dev/jwks.json), and
// example requests generated from that data and checked against it before
// they are printed. Nothing here is for production: anyone holding the API
// key can mint a token for any membership.
package devmode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trellis-authz/trellis/internal/apikey"
	"github.com/trellis-authz/trellis/internal/authz"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/token"
)

// DefaultTTL is the lifetime of a minted token unless asked otherwise.
const DefaultTTL = time.Hour

// MaxTTL bounds the lifetime of a minted token.
const MaxTTL = 24 * time.Hour

// Config configures the development endpoints.
type Config struct {
	Signer *token.Signer
	// Issuer is the iss of minted tokens; the server's verifier accepts it.
	Issuer string
	// APIKeys are the keys POST /dev/tokens requires.
	APIKeys []string
	// Data returns the data being served, whose memberships tokens are
	// minted for.
	Data func(ctx context.Context) (*model.Dataset, error)
}

// Handler serves next with GET /dev/jwks.json and POST /dev/tokens.
func Handler(next http.Handler, c Config) http.Handler {
	keys := apikey.New(c.APIKeys)
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("GET /dev/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(c.Signer.JWKS())
	})
	mux.HandleFunc("POST /dev/tokens", func(w http.ResponseWriter, r *http.Request) {
		if !keys.Valid(r) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "minting a token needs the API key: Authorization: Bearer <key>")
			return
		}
		var req TokenRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "body: "+err.Error())
			return
		}
		resp, err := c.mint(r.Context(), req)
		var notFound *unknownMembership
		switch {
		case errors.As(err, &notFound):
			writeError(w, http.StatusNotFound, "unknown_membership", err.Error())
		case errors.Is(err, errInvalid):
			writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		case err != nil:
			writeError(w, http.StatusInternalServerError, "internal", err.Error())
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(resp)
		}
	})
	return mux
}

// TokenRequest is the body of POST /dev/tokens.
type TokenRequest struct {
	MembershipID string `json:"organization_membership_id"`
	// Permissions, when set, replace the permissions claim (which AuthKit
	// derives from the membership's organization roles).
	Permissions *[]string `json:"permissions,omitempty"`
	// TTL is a Go duration ("1h"); default DefaultTTL, at most MaxTTL.
	TTL string `json:"ttl,omitempty"`
}

// TokenResponse is the answer of POST /dev/tokens.
type TokenResponse struct {
	Token     string         `json:"token"`
	ExpiresAt time.Time      `json:"expires_at"`
	Claims    map[string]any `json:"claims"`
}

var errInvalid = errors.New("invalid request")

type unknownMembership struct{ id string }

func (e *unknownMembership) Error() string {
	return fmt.Sprintf("membership %q is not in the data being served", e.id)
}

func (c Config) mint(ctx context.Context, req TokenRequest) (TokenResponse, error) {
	if req.MembershipID == "" {
		return TokenResponse{}, fmt.Errorf("%w: organization_membership_id is required", errInvalid)
	}
	ttl := DefaultTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > MaxTTL {
			return TokenResponse{}, fmt.Errorf("%w: ttl %q: give a duration above 0 and at most %s, such as 1h", errInvalid, req.TTL, MaxTTL)
		}
		ttl = d
	}
	ds, err := c.Data(ctx)
	if err != nil {
		return TokenResponse{}, err
	}
	if !hasMembership(ds, req.MembershipID) {
		return TokenResponse{}, &unknownMembership{req.MembershipID}
	}
	claims, err := token.AuthKitClaims(ds, req.MembershipID)
	if err != nil {
		return TokenResponse{}, err
	}
	if req.Permissions != nil {
		claims["permissions"] = *req.Permissions
	}
	tok, exp, err := c.sign(claims, ttl)
	return TokenResponse{Token: tok, ExpiresAt: exp, Claims: claims}, err
}

func hasMembership(ds *model.Dataset, om string) bool {
	for _, m := range ds.Memberships {
		if m.ID == om {
			return true
		}
	}
	return false
}

// sign adds iss, sid, iat and exp to claims and signs them.
func (c Config) sign(claims map[string]any, ttl time.Duration) (string, time.Time, error) {
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	claims["iss"], claims["iat"], claims["exp"] = c.Issuer, now.Unix(), exp.Unix()
	claims["sid"] = fmt.Sprintf("session_dev_%v", claims["sub"])
	tok, err := c.Signer.Sign(claims)
	return tok, exp.UTC(), err
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

// Example is one request of the printed help.
type Example struct {
	Comment string
	Path    string // e.g. /v1/check
	APIKey  bool   // sent with the API key
	Body    any    // the JSON body
	// Allowed is what the example answers, as checked before printing
	// (checks only).
	Allowed *bool
}

// PrintHelp prints the examples as ready-to-paste curl commands.
func PrintHelp(w io.Writer, url, source, apiKey string, examples []Example) error {
	if _, err := fmt.Fprintf(w, "\nTrellis is running in development mode on %s with %s.\nAPI key: %s\n"+
		"Mint a session token for any membership of the data:\n  trellis token mint --server %s --api-key %s --membership om_…\n",
		url, source, apiKey, url, apiKey); err != nil {
		return err
	}
	if len(examples) == 0 {
		_, err := fmt.Fprintln(w, "\n# No example requests: the data has no active membership with a role on a resource.")
		return err
	}
	for _, ex := range examples {
		body, err := json.Marshal(ex.Body)
		if err != nil {
			return err
		}
		auth := ""
		if ex.APIKey {
			auth = " -H 'Authorization: Bearer " + apiKey + "'"
		}
		if _, err := fmt.Fprintf(w, "\n# %s\ncurl -s %s%s%s -d '%s'\n", ex.Comment, url, ex.Path, auth, body); err != nil {
			return err
		}
	}
	return nil
}

// checker answers a check, for verifying examples before printing them.
type checker interface {
	Check(ctx context.Context, sub authz.Subject, c authz.Check, cons authz.Consistency) (authz.Decision, authz.Answer, error)
}

// Mint asks the --dev server at server (its base URL) for a token through
// POST /dev/tokens.
func Mint(ctx context.Context, client *http.Client, server, apiKey string, req TokenRequest) (TokenResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return TokenResponse{}, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+"/dev/tokens", bytes.NewReader(body))
	if err != nil {
		return TokenResponse{}, err
	}
	hreq.Header.Set("Authorization", "Bearer "+apiKey)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return TokenResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return TokenResponse{}, err
	}
	if resp.StatusCode != http.StatusCreated {
		var e struct{ Code, Message string }
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			return TokenResponse{}, fmt.Errorf("%s: %s (%s)", server, e.Message, e.Code)
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return TokenResponse{}, fmt.Errorf("%s answers %s to POST /dev/tokens: is it a trellis serve --dev?", server, resp.Status)
		}
		return TokenResponse{}, fmt.Errorf("%s: %s", server, resp.Status)
	}
	var out TokenResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return TokenResponse{}, fmt.Errorf("%s: the answer is not a token: %w", server, err)
	}
	return out, nil
}
