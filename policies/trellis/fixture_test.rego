# The data document the policy tests run against, in the shape
# internal/index builds (see the comment at the top of index.go).
#
# Two organizations. Types: organization → workspace → project → app, and app
# directly under workspace too.
#
#   org_acme (authz_resource_root_org_acme)
#   ├── ws_eng   workspace "eng"
#   │   ├── prj_api  project "api"
#   │   │   ├── app_gw    app "gateway"
#   │   │   └── app_auth  app "auth"
#   │   └── prj_web  project "web"          (leaf project)
#   ├── ws_ops   workspace "ops"           (leaf workspace)
#   └── ws_data  workspace "data"
#       ├── prj_etl  project "etl"
#       │   └── app_loader  app "loader"
#       └── app_cli  app "cli"             (app under a workspace)
#
#   org_globex (authz_resource_root_org_globex)
#   └── gx_ws_eng  workspace "eng"         (same external ids as in acme)
#       └── gx_prj_api  project "api"
#
# Memberships (organization roles are grants on the organization root):
#
#   om_alice  acme    active    member (org role); workspace-admin on ws_eng
#   om_bob    acme    active    member (org role); project-editor on prj_api;
#                               app-deployer on app_loader
#   om_carol  acme    active    auditor (acme's organization role)
#   om_dave   acme    inactive  admin (org role); workspace-admin on ws_eng
#   om_frank  acme    active    app-deployer on app_gw; workspace-viewer on ws_ops
#   om_grace  acme    active    admin (org role)
#   om_erin   globex  active    admin (org role)
#   om_heidi  globex  active    auditor (globex's organization role)
package trellis_test

acme_root := "authz_resource_root_org_acme"

ws_eng := "authz_resource_ws_eng"

prj_api := "authz_resource_prj_api"

app_gw := "authz_resource_app_gw"

app_auth := "authz_resource_app_auth"

prj_web := "authz_resource_prj_web"

ws_ops := "authz_resource_ws_ops"

ws_data := "authz_resource_ws_data"

prj_etl := "authz_resource_prj_etl"

app_loader := "authz_resource_app_loader"

app_cli := "authz_resource_app_cli"

globex_root := "authz_resource_root_org_globex"

gx_ws_eng := "authz_resource_gx_ws_eng"

gx_prj_api := "authz_resource_gx_prj_api"

# Every acme resource, sorted by id (the order lists return).
acme_all := [
	app_auth, app_cli, app_gw, app_loader,
	prj_api, prj_etl, prj_web,
	acme_root,
	ws_data, ws_eng, ws_ops,
]

acme_apps := [app_auth, app_cli, app_gw, app_loader]

fixture := {
	"revision": 42,
	"resource_types": {"workspace": true, "project": true, "app": true},
	"orgs": {
		"org_acme": {"root": acme_root},
		"org_globex": {"root": globex_root},
	},
	"resources": {
		acme_root: ["org_acme", "organization", "org_acme", [acme_root]],
		ws_eng: ["org_acme", "workspace", "eng", [ws_eng, acme_root]],
		prj_api: ["org_acme", "project", "api", [prj_api, ws_eng, acme_root]],
		app_gw: ["org_acme", "app", "gateway", [app_gw, prj_api, ws_eng, acme_root]],
		app_auth: ["org_acme", "app", "auth", [app_auth, prj_api, ws_eng, acme_root]],
		prj_web: ["org_acme", "project", "web", [prj_web, ws_eng, acme_root]],
		ws_ops: ["org_acme", "workspace", "ops", [ws_ops, acme_root]],
		ws_data: ["org_acme", "workspace", "data", [ws_data, acme_root]],
		prj_etl: ["org_acme", "project", "etl", [prj_etl, ws_data, acme_root]],
		app_loader: ["org_acme", "app", "loader", [app_loader, prj_etl, ws_data, acme_root]],
		app_cli: ["org_acme", "app", "cli", [app_cli, ws_data, acme_root]],
		globex_root: ["org_globex", "organization", "org_globex", [globex_root]],
		gx_ws_eng: ["org_globex", "workspace", "eng", [gx_ws_eng, globex_root]],
		gx_prj_api: ["org_globex", "project", "api", [gx_prj_api, gx_ws_eng, globex_root]],
	},
	"lookup": {
		"org_acme": {
			"organization": {"org_acme": acme_root},
			"workspace": {"eng": ws_eng, "ops": ws_ops, "data": ws_data},
			"project": {"api": prj_api, "web": prj_web, "etl": prj_etl},
			"app": {"gateway": app_gw, "auth": app_auth, "loader": app_loader, "cli": app_cli},
		},
		"org_globex": {
			"organization": {"org_globex": globex_root},
			"workspace": {"eng": gx_ws_eng},
			"project": {"api": gx_prj_api},
		},
	},
	# Only resources that have children are keys.
	"children": {
		acme_root: [ws_data, ws_eng, ws_ops],
		ws_eng: [prj_api, prj_web],
		prj_api: [app_auth, app_gw],
		ws_data: [app_cli, prj_etl],
		prj_etl: [app_loader],
		globex_root: [gx_ws_eng],
		gx_ws_eng: [gx_prj_api],
	},
	"grants": {
		acme_root: {
			"om_alice": ["member"],
			"om_bob": ["member"],
			"om_carol": ["org_acme/auditor"],
			"om_dave": ["admin"],
			"om_grace": ["admin"],
		},
		ws_eng: {
			"om_alice": ["workspace-admin"],
			"om_dave": ["workspace-admin"],
		},
		prj_api: {"om_bob": ["project-editor"]},
		app_loader: {"om_bob": ["app-deployer"]},
		app_gw: {"om_frank": ["app-deployer"]},
		ws_ops: {"om_frank": ["workspace-viewer"]},
		globex_root: {
			"om_erin": ["admin"],
			"om_heidi": ["org_globex/auditor"],
		},
	},
	"memberships": {
		"om_alice": {"org": "org_acme", "active": true, "anchors": [acme_root, ws_eng]},
		"om_bob": {"org": "org_acme", "active": true, "anchors": [acme_root, prj_api, app_loader]},
		"om_carol": {"org": "org_acme", "active": true, "anchors": [acme_root]},
		"om_dave": {"org": "org_acme", "active": false, "anchors": [acme_root, ws_eng]},
		"om_frank": {"org": "org_acme", "active": true, "anchors": [app_gw, ws_ops]},
		"om_grace": {"org": "org_acme", "active": true, "anchors": [acme_root]},
		"om_erin": {"org": "org_globex", "active": true, "anchors": [globex_root]},
		"om_heidi": {"org": "org_globex", "active": true, "anchors": [globex_root]},
	},
	"roles": {
		"member": {"slug": "member", "type": "organization", "permissions": {"workspace:view": true}},
		"admin": {"slug": "admin", "type": "organization", "permissions": {
			"org:billing": true,
			"workspace:view": true,
			"workspace:manage": true,
			"project:view": true,
			"project:edit": true,
			"app:view": true,
			"app:deploy": true,
		}},
		# Roles holding permissions of descendant types.
		"workspace-admin": {"slug": "workspace-admin", "type": "workspace", "permissions": {
			"workspace:view": true,
			"workspace:manage": true,
			"project:view": true,
			"project:edit": true,
			"app:view": true,
		}},
		"workspace-viewer": {"slug": "workspace-viewer", "type": "workspace", "permissions": {
			"workspace:view": true,
			"project:view": true,
			"app:view": true,
		}},
		"project-editor": {"slug": "project-editor", "type": "project", "permissions": {
			"project:view": true,
			"project:edit": true,
			"app:view": true,
			"app:deploy": true,
		}},
		"app-deployer": {"slug": "app-deployer", "type": "app", "permissions": {
			"app:view": true,
			"app:deploy": true,
		}},
		# Organization roles: same slug, one per organization, keyed org/slug.
		"org_acme/auditor": {"slug": "auditor", "type": "organization", "permissions": {
			"org:billing": true,
			"project:view": true,
			"app:view": true,
		}},
		"org_globex/auditor": {"slug": "auditor", "type": "organization", "permissions": {"workspace:view": true}},
	},
	"permissions": {
		"org:billing": {"type": "organization"},
		"workspace:view": {"type": "workspace"},
		"workspace:manage": {"type": "workspace"},
		"project:view": {"type": "project"},
		"project:edit": {"type": "project"},
		"app:view": {"type": "app"},
		"app:deploy": {"type": "app"},
	},
}

# fixture_revoked is fixture after om_alice's workspace-admin assignment on
# ws_eng was deleted: what the data layer sees at once, while a session token
# issued before may still list the permissions it gave.
fixture_revoked := json.patch(fixture, [
	{"op": "remove", "path": sprintf("/grants/%s/om_alice", [ws_eng])},
	{"op": "replace", "path": "/memberships/om_alice/anchors", "value": [acme_root]},
])

# fixture_cross_org is fixture with a grant the data sources never produce:
# globex's om_erin holding workspace-admin on acme's ws_eng. The policy must
# still never let a membership act outside its organization.
fixture_cross_org := json.patch(fixture, [
	{"op": "add", "path": sprintf("/grants/%s/om_erin", [ws_eng]), "value": ["workspace-admin"]},
	{"op": "replace", "path": "/memberships/om_erin/anchors", "value": [globex_root, ws_eng]},
])

# Resource references as decisions report them.
acme_root_ref := {"id": acme_root, "type": "organization", "external_id": "org_acme", "organization_id": "org_acme"}

globex_root_ref := {"id": globex_root, "type": "organization", "external_id": "org_globex", "organization_id": "org_globex"}

ws_eng_ref := {"id": ws_eng, "type": "workspace", "external_id": "eng", "organization_id": "org_acme"}

ws_ops_ref := {"id": ws_ops, "type": "workspace", "external_id": "ops", "organization_id": "org_acme"}

prj_api_ref := {"id": prj_api, "type": "project", "external_id": "api", "organization_id": "org_acme"}

app_gw_ref := {"id": app_gw, "type": "app", "external_id": "gateway", "organization_id": "org_acme"}

app_loader_ref := {"id": app_loader, "type": "app", "external_id": "loader", "organization_id": "org_acme"}

# Subjects.
subject(om) := {"organization_membership_id": om}

# acme_token returns verified claims for acme carrying perms and naming om.
acme_token(om, perms) := {
	"sub": "user_acme",
	"org_id": "org_acme",
	"membership_id": om,
	"role": "member",
	"roles": ["member"],
	"permissions": perms,
}

globex_token(om, perms) := {
	"sub": "user_globex",
	"org_id": "org_globex",
	"membership_id": om,
	"role": "member",
	"roles": ["member"],
	"permissions": perms,
}

expired := {"code": "token_expired", "message": "the token has expired"}

# host is data.trellis_host as the embedded engine writes it: the Go host
# verifies tokens, so input.token holds verified claims.
host := {"verifies_tokens": true}
