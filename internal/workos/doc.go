// Package workos serves the WorkOS-compatible Authorization API: the paths,
// JSON shapes, list envelope, pagination, status codes, error bodies and
// Bearer API keys of the WorkOS API, so that the official WorkOS SDKs work
// when pointed at Trellis. It only decodes, validates and encodes: data
// comes from a Store (PostgreSQL in production: package workosdb, wired in
// by cmd/trellis) and every check and
// discovery answer from a Decider (*authz.Service, the service layer the
// native /v1 routes share — one service layer, two route sets).
//
// # The contract
//
// The wire format below was read from the serializers, deserializers and
// HTTP client of the official Node SDK, @workos-inc/node 11.0.0, which is
// what sdktest/compat.mjs drives in the tests.
//
// Client. new WorkOS(key, {apiHostname, port, https}) sends every request
// to {https ? "https" : "http"}://{apiHostname}[:{port}]{path} with
// "Authorization: Bearer <key>", "Content-Type: application/json", a
// "User-Agent: workos-node/11.0.0" and, on every POST, an "Idempotency-Key"
// that its retries reuse (see Idempotency below). Query strings are built with URLSearchParams, dropping
// undefined, null and "" values; arrays become comma-separated strings
// (statuses=active,inactive). Path segments are encodeURIComponent-ed.
// Bodies are JSON with snake_case keys; undefined fields are left out. The
// SDK retries 408, 429, 500, 502, 503 and 504 (3 times by default); any
// 2xx is success, and bodies of DELETE responses are never read.
//
// Errors. The SDK maps a status to an exception and reads these fields of
// the JSON body: 401 → UnauthorizedException (body ignored); 404 →
// NotFoundException(code, message); 409 → ConflictException(code, message
// or error); 422 → UnprocessableEntityException(code, message, errors —
// when errors is present the message becomes the list of errors[].code);
// 429 → RateLimitExceededException(message, Retry-After); any other status
// → OauthException if the body has error or error_description,
// BadRequestException if it has both code and errors, else
// GenericServerException(status, message). Trellis therefore always
// answers
//
//	{"code": "…", "message": "…", "errors": [{"field": "…", "code": "…", "message": "…"}]}
//
// with errors present on 400 and 422 (so a 400 surfaces as
// BadRequestException) and never an "error" field. Codes: 400
// invalid_request (malformed JSON, an unknown body field or query
// parameter, a bad limit/order/cursor/header, a PATCH body naming no
// field, a NUL byte or invalid UTF-8 — raw, \u0000 or a lone surrogate —
// in any body string, query parameter or path segment, with errors[].field
// naming it); 401 unauthorized; 404
// entity_not_found (an entity named by the path, or by a check or
// discovery parameter) or not_found (no such route); 405
// method_not_allowed; 409 conflict (a used unique key, a delete of
// something in use); 422 invalid_request_parameters (a missing or invalid
// body field, a body reference that does not resolve, a rule of the data
// model broken — errors[].code is then the model.Code… constant, e.g.
// parent_type_not_allowed, permission_type_not_allowed); 503
// revision_not_applied; unavailable (the database is unreachable, out of
// connections or shutting down, or a write kept conflicting with concurrent
// writes; a write answered so changed nothing unless the connection broke
// during its commit), not_ready (a check or discovery request before the
// first data load: never a deny) or organization_unavailable (the
// organization is quarantined because its data breaks a rule), each with
// Retry-After; 429 rate_limit_exceeded with Retry-After beyond
// Config.MaxInFlight requests at once (the SDK waits and retries); 500
// server_error (details are only logged). Every response carries
// X-Request-ID (package requestid, wired by cmd/trellis), which the SDK
// reads into its exceptions' requestID and the logs carry as request_id. The one table
// mapping error kinds to statuses is Handler.fail.
//
// Objects. Ids are prefix + ULID (see NewID); timestamps are ISO 8601 UTC
// with milliseconds ("2026-01-02T03:04:05.678Z"); empty optional strings
// are JSON null. Fields the SDK deserializers read:
//
//	organization            object, id, name, allow_profiles_outside_organization (false),
//	                        domains ([] when none — read with .map, so never null) of
//	                        {object "organization_domain", id (org_domain_), organization_id,
//	                        domain, state, verification_strategy "manual", created_at,
//	                        updated_at}, stripe_customer_id (left out when none),
//	                        external_id, metadata, attributes (Trellis extension: left
//	                        out when none), created_at, updated_at
//	organization_membership object, id, user_id, organization_id, organization_name, status,
//	                        role {slug} (the first role, null with none), roles [{slug}],
//	                        directory_managed (false), custom_attributes ({}), created_at,
//	                        updated_at. Discovery lists return the same object.
//	permission              object, id (perm_), slug, name, description, resource_type_slug,
//	                        system (false), created_at, updated_at
//	role                    object, id (role_), slug, name, description, permissions [slug],
//	                        resource_type_slug, type ("EnvironmentRole" | "OrganizationRole"),
//	                        created_at, updated_at
//	authorization_resource  object, id (authz_resource_), external_id, name, description,
//	                        resource_type_slug, organization_id, parent_resource_id (null when
//	                        the parent is the organization root), attributes (Trellis
//	                        extension: left out when none), created_at, updated_at
//	role_assignment         object, id (role_assignment_), organization_membership_id,
//	                        role {slug}, resource {id, external_id, resource_type_slug},
//	                        source {type: "direct", group_role_assignment_id: null},
//	                        created_at, updated_at
//	group                   object, id (group_), organization_id, name, description,
//	                        created_at, updated_at
//	group_role_assignment   object, id (gra_), group_id, role {slug}, resource {id,
//	                        external_id, resource_type_slug}, created_at, updated_at
//	resource_type           (Trellis extension) object, slug, name, description,
//	                        parent_type_slugs, created_at, updated_at
//	check result            {"authorized": bool} — nothing else
//
// Each organization has a root resource of type "organization" whose
// external id is the organization id; it is addressed like any resource
// (by its id, or as .../resources/organization/{org_id}), is never listed,
// and cannot be changed or deleted except with its organization.
//
// Lists. {"object": "list", "data": [...], "list_metadata": {"before":
// cursor|null, "after": cursor|null}}. Query: limit (default 10, 1–100,
// else 400), order (asc | desc, default desc — the SDK always sends one),
// and at most one of after and before, each a cursor the same list
// returned. Cursors are opaque (package cursor): they hold an item's key
// (its id, a slug for resource types and effective permissions) and are
// bound to the route, its path and its filter parameters; any other string
// — an id, a cursor of another list or of other filters, an altered one —
// is a 400 naming the parameter. The SDK passes back exactly what
// list_metadata holds, so it pages unchanged. Lists are ordered by id; ids
// are ULIDs minted in increasing order, so id order is creation order. A
// cursor is a key, not an offset: pages stay correct under concurrent
// inserts and deletes. list_metadata.after is the cursor of the last item
// of the page when more items follow (the SDK's autoPagination follows it
// with limit=100), else null; list_metadata.before that of the first item
// when items precede the page, else null. Role lists (environment, and
// an organization's: environment roles then its custom roles, each in
// priority order) are not paginated. A new role goes to the bottom of its
// order; PUT …/roles/priority (a Trellis extension) sets it.
// Discovery lists (resources for a membership, memberships for a resource)
// honour every pagination parameter too: the policy's whole answer is read
// (authz.MaxPageSize ids a query) and paged by id like any list.
// Effective permissions come sorted by slug and are paginated in full,
// keyed by slug.
//
// # Routes
//
// Every route needs "Authorization: Bearer <api key>" (else 401). Writes
// answer 201 (create) or 200 (update, returning the object) or 204
// (delete, no body) and set X-Trellis-Revision.
//
//	POST   /organizations                                         201  {name, external_id?, metadata?, domain_data?, stripe_customer_id?}
//	GET    /organizations                                         200  list; ?domains=a,b (those with one of them)
//	GET    /organizations/{id}                                    200
//	GET    /organizations/external_id/{external_id}               200
//	PUT    /organizations/{id}                                    200  {name?, external_id?, metadata?, domain_data?, stripe_customer_id?}
//	                                                                   domain_data [{domain, state: pending|verified}] replaces the
//	                                                                   domains (a kept domain keeps its id); a domain of another
//	                                                                   organization is a 409; Trellis verifies no domain
//	                                                                   attributes? on POST and PUT of organizations and POST and
//	                                                                   PATCH of resources (a Trellis extension the SDK never
//	                                                                   sends): a JSON object for extensions, replaced whole; null
//	                                                                   or {} clears it (absent: unchanged); not an object is a 400,
//	                                                                   over model.MaxAttributesBytes a 422, errors[].field attributes
//	DELETE /organizations/{id}                                    204  cascades: memberships, custom roles, resources, assignments
//	POST   /user_management/organization_memberships              201  {organization_id, user_id, role_slug? | role_slugs?}
//	GET    /user_management/organization_memberships              200  list; ?organization_id, user_id, statuses=a,b
//	GET    /user_management/organization_memberships/{id}         200
//	PUT    /user_management/organization_memberships/{id}         200  {role_slug? | role_slugs?}
//	PUT    /user_management/organization_memberships/{id}/deactivate  200
//	PUT    /user_management/organization_memberships/{id}/reactivate  200
//	DELETE /user_management/organization_memberships/{id}         204  removes its assignments
//	POST   /authorization/resource_types                          201  {slug, name, description?, parent_type_slugs}
//	GET    /authorization/resource_types                          200  list, by slug
//	GET    /authorization/resource_types/{slug}                   200
//	PATCH  /authorization/resource_types/{slug}                   200  {name?, description?, parent_type_slugs?}
//	DELETE /authorization/resource_types/{slug}                   204  409 unless a leaf with no resources, permissions or roles
//	POST   /authorization/permissions                             201  {slug, name, description?, resource_type_slug? (organization)}
//	GET    /authorization/permissions                             200  list
//	GET    /authorization/permissions/{slug}                      200
//	PATCH  /authorization/permissions/{slug}                      200  {name?, description?}; slug and type immutable (422)
//	DELETE /authorization/permissions/{slug}                      204  removes it from every role
//	POST   /authorization/roles                                   201  {slug, name, description?, resource_type_slug? (organization)}
//	GET    /authorization/roles                                   200  list of environment roles
//	GET    /authorization/roles/{slug}                            200
//	PATCH  /authorization/roles/{slug}                            200  {name?, description?}
//	DELETE /authorization/roles/{slug}                            204  removes its assignments and membership roles
//	PUT    /authorization/roles/{slug}/permissions                200  {permissions: [slug]} replaces
//	POST   /authorization/roles/{slug}/permissions                200  {slug} adds (present: no change)
//	DELETE /authorization/roles/{slug}/permissions/{permission}   204  404 when absent
//	…      /authorization/organizations/{org}/roles[/{slug}[/permissions[/{permission}]]]
//	                                                              the same for custom roles; GET of the list and of
//	                                                              one role include environment roles, writes only
//	                                                              touch custom roles (404 for an environment role)
//	POST   /authorization/resources                               201  {organization_id, resource_type_slug, external_id, name,
//	                                                                   description?, parent_resource_id? | parent_resource_external_id
//	                                                                   + parent_resource_type_slug?} (default parent: the root)
//	GET    /authorization/resources                               200  list; ?organization_id, resource_type_slug, parent_resource_id,
//	                                                                   parent_resource_type_slug + parent_external_id, search
//	GET    /authorization/resources/{id}                          200
//	PATCH  /authorization/resources/{id}                          200  {name?, description?, parent_resource_id? | parent_resource_external_id
//	                                                                   + parent_resource_type_slug?} — a parent re-parents the subtree;
//	                                                                   parent_resource_id null moves it under the root
//	DELETE /authorization/resources/{id}                          204  ?cascade_delete=true; without it 409 with children or assignments
//	GET|PATCH|DELETE /authorization/organizations/{org}/resources/{type}/{external_id}   the same by external id
//	GET    /authorization/resources/{id}/role_assignments         200  list; ?role_slug (also by external id)
//	POST   /authorization/organization_memberships/{om}/role_assignments  201  {role_slug, resource_id | resource_external_id
//	                                                                   + resource_type_slug} (external ids in the membership's organization)
//	GET    /authorization/organization_memberships/{om}/role_assignments  200  list; ?resource_id, resource_external_id, resource_type_slug
//	DELETE /authorization/organization_memberships/{om}/role_assignments  204  body as POST; 404 when there is none
//	DELETE /authorization/organization_memberships/{om}/role_assignments/{id}  204
//	POST   /organizations/{org}/groups                            201  {name, description?}
//	GET    /organizations/{org}/groups                            200  list
//	GET    /organizations/{org}/groups/{group}                    200  (404 for a group of another organization)
//	PATCH  /organizations/{org}/groups/{group}                    200  {name?, description?}; description null keeps it
//	                                                                   (the SDK sends null for "not given"), "" clears it
//	DELETE /organizations/{org}/groups/{group}                    204  removes its members and role assignments
//	POST   /organizations/{org}/groups/{group}/organization-memberships  201  {organization_membership_id} → the group;
//	                                                                   422 for a membership of another organization, 409 if a member
//	GET    /organizations/{org}/groups/{group}/organization-memberships  200  list of memberships, by id
//	DELETE /organizations/{org}/groups/{group}/organization-memberships/{om}  204  404 when not a member
//	GET    /user_management/organization_memberships/{om}/groups  200  list of the membership's groups
//	POST   /authorization/groups/{group}/role_assignments         201  {role_slug, resource_id? | resource_external_id
//	                                                                   + resource_type_slug?}: no resource = the organization root
//	PUT    /authorization/groups/{group}/role_assignments         200  {role_assignments: [as POST], ≤ 100} replaces: kept ones keep
//	                                                                   their ids; answers the list of all, by id
//	GET    /authorization/groups/{group}/role_assignments         200  list
//	DELETE /authorization/groups/{group}/role_assignments         204  body as POST; 404 when there is none
//	GET|DELETE /authorization/groups/{group}/role_assignments/{id}  200 | 204
//	POST   /authorization/organization_memberships/{om}/check     200  {permission_slug, resource_id | resource_external_id
//	                                                                   + resource_type_slug} → {"authorized": bool}
//	GET    /authorization/organization_memberships/{om}/resources 200  list of resources; ?permission_slug (required),
//	                                                                   parent_resource_id | parent_resource_external_id + parent_resource_type_slug (required)
//	GET    /authorization/resources/{id}/organization_memberships 200  list of memberships; ?permission_slug (required),
//	                                                                   assignment=direct (default) | indirect (also by external id)
//	GET    /authorization/resources/{id}/organization_memberships/{om}/permissions            200  list of permissions
//	GET    /authorization/organization_memberships/{om}/resources/{type}/{external_id}/permissions  200  the same by external id
//
// Decisions follow the policies (DESIGN.md §1): a check is allowed when a
// role holding the permission is assigned to the active membership, or to
// a group it is a member of, on the resource or an ancestor (organization
// roles count on the root). A check
// naming an unknown membership or resource answers 404 (the SDK declares
// NotFoundException for it) — never a deny that hides a typo, and never an
// allow; an unknown permission is a deny. Resources for a membership are
// the resources of the permission's resource type below the parent (at any
// depth, not just children) on which a check would allow — full
// inheritance, as WorkOS documents it ("if a user's workspace-admin role
// includes project:edit, all projects in that workspace appear"). An
// unknown membership or parent is a 404, an unknown permission a 422
// (errors[].code unknown_permission). Memberships for a resource with assignment=direct
// are those with a granting role on the resource itself; indirect adds its
// ancestors. Only active memberships are listed.
//
// # Consistency
//
// Every write answers the revision it produced in X-Trellis-Revision and
// tells the Decider (Acknowledged) before answering, which waits (bounded
// by MaxWait) until the engine has applied it. Every decision of the
// instance — these checks and discovery lists, and the native /v1 routes
// and Data API sharing the service — waits (bounded by the service's
// MaxWait, then 503 revision_not_applied) until the engine has applied
// every write the instance acknowledged, so a client of one instance
// reads its own writes with no database round trip. A request also accepts
// "X-Trellis-Revision: N" (at least N; 400 when not a non-negative
// integer) and "X-Trellis-Consistency: full" (the database head, through
// the service's Head function), and answers the revision it was evaluated
// at in X-Trellis-Revision. Reads of entities go to the Store, which is the
// database and so always current; they accept the headers and need not
// wait.
//
// # Idempotency
//
// Every POST that writes honours Idempotency-Key (at most 255 bytes of
// text, else 400): the first response — status, body and
// X-Trellis-Revision — is recorded with the key and a digest of the
// request (method, path, query, body) for KeyLifetime (24 h) by Replays
// (PostgreSQL in production, so a retry reaching another instance or a
// restarted one is answered too; in memory otherwise). A repeat is
// answered with it, with "Idempotent-Replayed: true", and writes nothing;
// the key with a different request is a 400 naming Idempotency-Key; a
// repeat arriving while the first runs waits for its answer (up to 10 s,
// then 409). Answers 5xx and 429 are not recorded: the SDK retries them,
// and such a write changed nothing. POST …/check writes nothing, so its
// key is not recorded and a retry is answered afresh. If a server dies
// between a write's commit and the record of its answer, a retry within
// ClaimTimeout (5 min) answers 409, a later one runs again.
//
// # Deliberate differences from WorkOS
//
// Unknown body fields and query parameters are a 400, so a WorkOS feature
// Trellis lacks is never silently ignored. Users, invitations and
// the other WorkOS products are not served. A membership's role assignment
// list holds its own role assignments, not those it has through groups
// (WorkOS lists those too, with source.type "group"; list the group's
// instead); its organization roles (role_slug/role_slugs) are on the
// membership object. Groups do not nest. The SDK's updateResource sends
// only name and description; a re-parent is the same PATCH with parent
// fields.
package workos
