package model_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/model"
)

func TestNewIDIncreases(t *testing.T) {
	prev := ""
	for range 10_000 {
		id := model.NewID("role_")
		ulid, ok := strings.CutPrefix(id, "role_")
		if !ok || len(ulid) != 26 || strings.Trim(ulid, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("id %q is not role_ and a 26-character ULID", id)
		}
		if id <= prev {
			t.Fatalf("id %q does not sort after %q", id, prev)
		}
		prev = id
	}
}

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want error
	}{
		{"", nil},
		{"Zoë 東京 😀 \uFFFD", nil},
		{"a\x00b", model.ErrNUL},
		{"\xff\x00", model.ErrNUL},
		{"a\xffb", model.ErrInvalidUTF8},
		{"\xed\xa0\x80", model.ErrInvalidUTF8}, // an encoded surrogate
	} {
		if got := model.CheckText(tc.s); !errors.Is(got, tc.want) {
			t.Errorf("CheckText(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestCheckID(t *testing.T) {
	valid := []struct{ prefix, id string }{
		{model.PrefixOrganization, "org_acme"},
		{model.PrefixOrganization, model.NewID(model.PrefixOrganization)},
		{model.PrefixMembership, "om_1"},
		{model.PrefixUser, "user_bob"},
		{model.PrefixResource, "authz_resource_acme_eng"},
		{model.PrefixResource, model.RootResourceID("org_acme")},
		{model.PrefixResource, "authz_resource_ff82d82a5b6c0f6e"}, // derived by the data file
		{model.PrefixAssignment, "role_assignment_carol_acme-web"},
		{model.PrefixOrganization, "org_" + strings.Repeat("x", model.MaxIDLength-4)},
	}
	for _, tc := range valid {
		if err := model.CheckID(tc.prefix, tc.id); err != nil {
			t.Errorf("CheckID(%q, %q) = %v, want nil", tc.prefix, tc.id, err)
		}
	}
	invalid := []struct{ prefix, id string }{
		{model.PrefixOrganization, ""},
		{model.PrefixOrganization, "org_"},
		{model.PrefixOrganization, "acme"},
		{model.PrefixOrganization, "om_acme"},
		{model.PrefixResource, "authz_resource_a b"},
		{model.PrefixResource, "authz_resource_a:b"},
		{model.PrefixResource, "authz_resource_a\x00"},
		{model.PrefixResource, "authz_resource_é"},
		{model.PrefixAssignment, "role_assignment_../x"},
		{model.PrefixOrganization, "org_" + strings.Repeat("x", model.MaxIDLength-3)},
	}
	for _, tc := range invalid {
		if err := model.CheckID(tc.prefix, tc.id); err == nil {
			t.Errorf("CheckID(%q, %q) = nil, want an error", tc.prefix, tc.id)
		}
	}
}
