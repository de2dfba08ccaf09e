package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestTestCommand(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"test", "../../internal/datafile/demo.test.yaml"}, &out, &out); err != nil {
		t.Fatalf("the shipped example: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "assertions passed") {
		t.Errorf("output:\n%s", out.String())
	}

	wrong := writeFile(t, t.TempDir(), "wrong.yaml", []byte(`tests:
  - name: carol edits api
    check:
      - {membership: om_carol, permission: "project:edit", resource: "project:api", allowed: true}
`))
	out.Reset()
	err := run(ctx, []string{"test", wrong}, &out, &out)
	if err == nil || err.Error() != "1 of 1 assertions failed" {
		t.Fatalf("a wrong assertion: %v", err)
	}
	if !strings.Contains(out.String(), "FAIL  carol edits api: check om_carol project:edit project:api\n      allowed = false, want true") {
		t.Errorf("report of a wrong assertion:\n%s", out.String())
	}
	if err := run(ctx, []string{"test"}, &out, &out); err == nil || !strings.Contains(err.Error(), "FILE") {
		t.Errorf("no file: %v", err)
	}
	if err := run(ctx, []string{"test", "--help"}, &out, &out); err != nil {
		t.Errorf("--help: %v, want nil (exit 0)", err)
	}
}

func TestValidateCommand(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"validate", "../../internal/datafile/demo.yaml"}, &out, &out); err != nil || !strings.Contains(out.String(), "valid: 2 organizations") {
		t.Fatalf("the demo: %v\n%s", err, out.String())
	}
	bad := writeFile(t, t.TempDir(), "bad.yaml", []byte(`organizations: [{id: org_a}]
memberships:
  - {id: om_a, user_id: user_a, organization_id: org_x}
  - {id: om_b, user_id: user_b, organization_id: org_a, roles: [nope]}
`))
	out.Reset()
	err := run(ctx, []string{"validate", "../../internal/datafile/demo.yaml", bad}, &out, &out)
	if err == nil || err.Error() != "1 of 2 files are not valid" {
		t.Fatalf("a bad file: %v", err)
	}
	for _, want := range []string{bad + ": line 3: membership om_a: organization_id", bad + ": line 4: membership om_b: role"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
