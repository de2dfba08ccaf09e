package cursor_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/cursor"
)

func TestRoundTrip(t *testing.T) {
	q := cursor.For("/v1/list-resources", "project:edit", "project", "", "org_acme")
	for _, pos := range []string{"authz_resource_acme_api", "a", "project:edit", "é😀", strings.Repeat("x", 1024)} {
		c := q.Encode(pos)
		if strings.ContainsAny(c, "+/=?&# ") {
			t.Errorf("cursor %q is not safe in a query string", c)
		}
		got, err := q.Decode(c)
		if err != nil || got != pos {
			t.Errorf("Decode(Encode(%q)) = %q, %v", pos, got, err)
		}
		if len(pos) > 4 && strings.Contains(c, pos) {
			t.Errorf("cursor %q shows its position %q as it is: it is meant to be opaque", c, pos)
		}
	}
	if got, err := q.Decode(""); got != "" || err != nil {
		t.Errorf(`Decode("") = %q, %v; want the first page`, got, err)
	}
}

func TestEncodeIsStable(t *testing.T) {
	// Cursors outlive processes and are decoded by other instances: the
	// format must not change silently.
	got := cursor.For("e", "f").Encode("p")
	if want := cursor.For("e", "f").Encode("p"); got != want {
		t.Fatalf("Encode is not deterministic: %q, %q", got, want)
	}
	const golden = "AYuuZr_5E4bAcL5VpyY"
	if got != golden {
		t.Errorf("Encode = %q, want %q: a changed format must change the version", got, golden)
	}
}

func TestOtherQuery(t *testing.T) {
	base := cursor.For("/v1/list-resources", "project:edit", "project")
	c := base.Encode("authz_resource_acme_api")
	for name, q := range map[string]cursor.Query{
		"other endpoint":            cursor.For("/v1/list-memberships", "project:edit", "project"),
		"other filter":              cursor.For("/v1/list-resources", "project:view", "project"),
		"a filter left out":         cursor.For("/v1/list-resources", "project:edit"),
		"a filter added":            cursor.For("/v1/list-resources", "project:edit", "project", ""),
		"filters concatenated":      cursor.For("/v1/list-resources", "project:editproject"),
		"a filter moved to another": cursor.For("/v1/list-resources", "project:edit", "", "project"),
	} {
		if _, err := q.Decode(c); !errors.Is(err, cursor.ErrOtherQuery) {
			t.Errorf("%s: Decode = %v, want ErrOtherQuery", name, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	q := cursor.For("/organizations")
	c := q.Encode("org_01HZX3ABCDEFGHJKMNPQRSTVWX")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"an id":          "org_01HZX3ABCDEFGHJKMNPQRSTVWX",
		"not base64":     "!!!",
		"padded":         c + "==",
		"truncated":      c[:len(c)-2],
		"empty position": base64.RawURLEncoding.EncodeToString(raw[:9]),
		"too long":       strings.Repeat("A", 2000),
		"NUL":            "\x00",
	}
	// Every single-bit change anywhere is caught.
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			cases[fmt.Sprintf("bit %d of byte %d flipped", bit, i)] = base64.RawURLEncoding.EncodeToString(b)
		}
	}
	for name, bad := range cases {
		if pos, err := q.Decode(bad); err == nil || (!errors.Is(err, cursor.ErrMalformed) && !errors.Is(err, cursor.ErrOtherQuery)) {
			t.Errorf("%s: Decode(%q) = %q, %v; want an error", name, bad, pos, err)
		}
	}
}
