package datafile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trellis-authz/trellis/internal/model"
)

// Formats accepted by Parse.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// OrganizationRef is the reference that names an organization's root
// resource in an assignment's resource (and, redundantly, in a resource's
// parent).
const OrganizationRef = "organization"

// document is the data file as written. Its field tags are the file format;
// keep doc.go and README-format.md in step with them.
type document struct {
	MaxDepth      int                 `json:"max_depth"      yaml:"max_depth"`
	DefaultRole   string              `json:"default_role"   yaml:"default_role"`
	ResourceTypes []resourceTypeEntry `json:"resource_types" yaml:"resource_types"`
	Permissions   []permissionEntry   `json:"permissions"    yaml:"permissions"`
	Roles         []roleEntry         `json:"roles"          yaml:"roles"`
	Organizations []organizationEntry `json:"organizations"  yaml:"organizations"`
	Memberships   []membershipEntry   `json:"memberships"    yaml:"memberships"`
	Resources     []resourceEntry     `json:"resources"      yaml:"resources"`
	Assignments   []assignmentEntry   `json:"assignments"    yaml:"assignments"`
	Groups        []groupEntry        `json:"groups"         yaml:"groups"`
	GroupMembers  []groupMemberEntry  `json:"group_members"  yaml:"group_members"`
}

type groupEntry struct {
	ID             string `json:"id"              yaml:"id"`
	OrganizationID string `json:"organization_id" yaml:"organization_id"`
	Name           string `json:"name"            yaml:"name"`
	Description    string `json:"description"     yaml:"description"`
}

type groupMemberEntry struct {
	Group      string `json:"group"      yaml:"group"`
	Membership string `json:"membership" yaml:"membership"`
}

type resourceTypeEntry struct {
	Slug        string   `json:"slug"         yaml:"slug"`
	Name        string   `json:"name"         yaml:"name"`
	Description string   `json:"description"  yaml:"description"`
	ParentTypes []string `json:"parent_types" yaml:"parent_types"` // nil (absent) means [organization]
}

type permissionEntry struct {
	Slug         string `json:"slug"          yaml:"slug"`
	Name         string `json:"name"          yaml:"name"`
	Description  string `json:"description"   yaml:"description"`
	ResourceType string `json:"resource_type" yaml:"resource_type"`
}

type roleEntry struct {
	Slug           string   `json:"slug"            yaml:"slug"`
	Name           string   `json:"name"            yaml:"name"`
	Description    string   `json:"description"     yaml:"description"`
	ResourceType   string   `json:"resource_type"   yaml:"resource_type"`
	OrganizationID string   `json:"organization_id" yaml:"organization_id"`
	Permissions    []string `json:"permissions"     yaml:"permissions"`
}

type organizationEntry struct {
	ID             string           `json:"id"               yaml:"id"`
	Name           string           `json:"name"             yaml:"name"`
	RootResourceID string           `json:"root_resource_id" yaml:"root_resource_id"`
	Attributes     model.Attributes `json:"attributes"       yaml:"attributes"`
}

type membershipEntry struct {
	ID             string   `json:"id"              yaml:"id"`
	UserID         string   `json:"user_id"         yaml:"user_id"`
	OrganizationID string   `json:"organization_id" yaml:"organization_id"`
	Status         string   `json:"status"          yaml:"status"` // "" means active
	Roles          []string `json:"roles"           yaml:"roles"`
}

type resourceEntry struct {
	ID             string           `json:"id"              yaml:"id"` // "" means derived
	OrganizationID string           `json:"organization_id" yaml:"organization_id"`
	Type           string           `json:"type"            yaml:"type"`
	ExternalID     string           `json:"external_id"     yaml:"external_id"`
	Name           string           `json:"name"            yaml:"name"`
	Description    string           `json:"description"     yaml:"description"`
	Parent         string           `json:"parent"          yaml:"parent"` // id, type:external_id, "organization" or ""
	Attributes     model.Attributes `json:"attributes" yaml:"attributes"`
}

type assignmentEntry struct {
	ID         string `json:"id"         yaml:"id"`         // "" means derived
	Membership string `json:"membership" yaml:"membership"` // or Group
	Group      string `json:"group"      yaml:"group"`
	Role       string `json:"role"       yaml:"role"`
	Resource   string `json:"resource"   yaml:"resource"` // id, type:external_id or "organization"
}

// sections maps each model entity kind to the top-level key of its list, so
// a problem can be traced to the file entry it is about.
var sections = map[string]string{
	model.KindDataset:      "max_depth",
	model.KindResourceType: "resource_types",
	model.KindPermission:   "permissions",
	model.KindRole:         "roles",
	model.KindOrganization: "organizations",
	model.KindMembership:   "memberships",
	model.KindResource:     "resources",
	model.KindAssignment:   "assignments",
	model.KindGroup:        "groups",
	model.KindGroupMember:  "group_members",
}

// fileFields renames model fields that the file spells differently, per
// entity kind, so every problem names the key the author wrote.
var fileFields = map[string]map[string]string{
	model.KindMembership:  {"role_slugs": "roles"},
	model.KindResource:    {"parent_id": "parent"},
	model.KindAssignment:  {"membership_id": "membership", "group_id": "group", "resource_id": "resource"},
	model.KindGroupMember: {"group_id": "group", "membership_id": "membership"},
}

// Load reads the data file at path and parses it like Parse, taking the
// format from the extension (.yaml or .yml, .json; any other is sniffed).
// Every error, a *model.ValidationError included, is wrapped with the path.
func Load(path string) (*model.Dataset, error) {
	return load(path, Parse)
}

// LoadIsolated reads the data file at path and parses it like
// ParseIsolated, taking the format from the extension as Load does.
func LoadIsolated(path string) (*model.Dataset, error) {
	return load(path, ParseIsolated)
}

// LoadIsolatedEarly is LoadIsolated, handing the dataset to decoded as
// soon as it is decoded with every reference resolved, before it is
// validated: so that the caller can start building what it builds of it
// (say, a store) while validation runs. decoded must not modify it and
// must return at once. The dataset returned is that one when it is valid;
// when not, or when decoded was not called, it is another (or none, with
// the error).
func LoadIsolatedEarly(path string, decoded func(*model.Dataset)) (*model.Dataset, error) {
	return load(path, func(data []byte, format string) (*model.Dataset, error) {
		return parseIsolated(data, format, decoded)
	})
}

func load(path string, parse func([]byte, string) (*model.Dataset, error)) (*model.Dataset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load data file: %w", err)
	}
	format := ""
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		format = FormatYAML
	case ".json":
		format = FormatJSON
	}
	d, err := parse(data, format)
	if err != nil {
		return nil, fmt.Errorf("load data file %s: %w", path, err)
	}
	return d, nil
}

// Parse decodes a data file in format FormatYAML or FormatJSON (or "" to
// sniff: JSON if the first non-blank character is "{", else YAML), resolves
// its references and validates the result with model.Dataset.Validate.
//
// Decoding is strict: an unknown or repeated key, a value of the wrong type
// or a second YAML document is an error naming the line. Broken references
// and broken rules are reported together as a *model.ValidationError whose
// problems name the entity, the file's key and the line of the entry. On any
// error the Dataset is nil. Problems are listed in file order. The caller
// owns the returned Dataset; its Revision is 0.
func Parse(data []byte, format string) (*model.Dataset, error) {
	d, problems, err := parse(data, format, nil)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, &model.ValidationError{Problems: problems}
	}
	return d, nil
}

// ParseIsolated is Parse for serving a file: an organization whose entries
// break a rule is held out of the Dataset and listed in its Quarantined
// (model.Dataset.Isolate), with the problems as Parse reports them, so
// that every other organization is served. Decoding errors, and problems
// no organization can be blamed for (resource types, permissions,
// environment roles, max_depth), fail as with Parse.
func ParseIsolated(data []byte, format string) (*model.Dataset, error) {
	return parseIsolated(data, format, nil)
}

func parseIsolated(data []byte, format string, decoded func(*model.Dataset)) (*model.Dataset, error) {
	d, problems, err := parse(data, format, decoded)
	if err != nil {
		return nil, err
	}
	if len(problems) == 0 {
		return d, nil
	}
	held := d.Without(problems)
	if held == nil {
		return nil, &model.ValidationError{Problems: problems}
	}
	return held.Isolate()
}

// parse decodes and builds the Dataset of a data file, and returns it with
// every problem found, each with its line and organizations, in file order.
// decoded, when not nil, is called with the Dataset once it is built,
// before it is validated, if building it found no problem.
func parse(data []byte, format string, decoded func(*model.Dataset)) (*model.Dataset, []model.Problem, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	switch format {
	case "":
		format = sniff(data)
	case FormatYAML, "yml":
		format = FormatYAML
	case FormatJSON:
	default:
		return nil, nil, fmt.Errorf("unknown data file format %q (want %q or %q)", format, FormatYAML, FormatJSON)
	}

	var (
		doc   *document
		lines map[string][]int
		err   error
	)
	if format == FormatJSON {
		doc, lines, err = decodeJSON(data)
	} else {
		doc, err = decodeYAML(data)
	}
	if err != nil {
		return nil, nil, err
	}

	b := newBuilder(doc)
	d := b.build()
	problems := b.problems
	if decoded != nil && len(problems) == 0 {
		decoded(d)
	}
	validate := d.Validate
	if format == FormatJSON {
		validate = d.ValidateKnownText // decodeJSON checked every string of data (jsonText)
	}
	if err := validate(); err != nil {
		var verr *model.ValidationError
		if !errors.As(err, &verr) {
			return nil, nil, err
		}
		problems = mergeProblems(problems, verr.Problems)
	}
	if len(problems) == 0 {
		return d, nil, nil
	}
	d.Attribute(problems)
	if lines == nil {
		lines = yamlLines(data)
	}
	for i := range problems {
		p := &problems[i]
		kind, _, _ := strings.Cut(p.Entity, " ")
		if ls := lines[p.Field]; kind == model.KindDataset && len(ls) > 0 { // max_depth, default_role
			p.Line = ls[0]
		} else if ls := lines[sections[kind]]; p.Index >= 0 && p.Index < len(ls) {
			p.Line = ls[p.Index]
		}
	}
	// File order reads best; problems without a line go last.
	slices.SortStableFunc(problems, func(a, b model.Problem) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
	return d, problems, nil
}

// sniff guesses the format of data: JSON when it starts with "{".
func sniff(data []byte) string {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return FormatJSON
	}
	return FormatYAML
}

// mergeProblems renames the model fields of Validate's problems to the
// file's keys and appends those not already reported by reference
// resolution (an unresolved reference is left in place, so Validate reports
// it again in its own words).
func mergeProblems(resolved, validated []model.Problem) []model.Problem {
	seen := make(map[[2]string]bool, len(resolved))
	for _, p := range resolved {
		seen[[2]string{p.Entity, p.Field}] = true
	}
	out := resolved
	for _, p := range validated {
		kind, _, _ := strings.Cut(p.Entity, " ")
		if f, ok := fileFields[kind][p.Field]; ok {
			p.Field = f
		}
		if !seen[[2]string{p.Entity, p.Field}] {
			out = append(out, p)
		}
	}
	return out
}

// DeriveResourceID returns the id the data file gives a resource that has
// no id: "authz_resource_" and the first 16 hex digits of the SHA-256 of
// orgID, typ and externalID joined by NUL bytes. It is stable across
// releases: ids derived once may be stored elsewhere.
func DeriveResourceID(orgID, typ, externalID string) string {
	return "authz_resource_" + shortHash(orgID, typ, externalID)
}

// DeriveAssignmentID returns the id the data file gives an assignment that
// has no id: "role_assignment_" and the first 16 hex digits of the SHA-256
// of membershipID, roleSlug and resourceID (the resolved resource id) joined
// by NUL bytes. It is stable across releases.
func DeriveAssignmentID(membershipID, roleSlug, resourceID string) string {
	return "role_assignment_" + shortHash(membershipID, roleSlug, resourceID)
}

func shortHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// builder turns a document into a Dataset, resolving the file's references
// and recording the ones it cannot resolve.
type builder struct {
	doc      *document
	problems []model.Problem

	orgRoots  map[string]string // organization id → root resource id
	memberOrg map[string]string // membership or group id → organization id; built by principalOrg
	resources []model.Resource  // the dataset's, ids set
	byExt     map[extKey]string // (organization, type, external id) → resource id; built by index
	ids       map[string]bool   // resource ids; built by index
}

type extKey struct{ org, typ, ext string }

func newBuilder(doc *document) *builder {
	return &builder{
		doc:      doc,
		orgRoots: make(map[string]string, len(doc.Organizations)),
	}
}

func (b *builder) problem(kind, id string, index int, field, format string, args ...any) {
	entity := kind + " " + id
	if id == "" {
		entity = fmt.Sprintf("%s #%d", kind, index)
	}
	b.problems = append(b.problems, model.Problem{
		Entity:  entity,
		Field:   field,
		Code:    model.CodeUnknownReference,
		Message: fmt.Sprintf(format, args...),
		Index:   index,
	})
}

func (b *builder) build() *model.Dataset {
	doc := b.doc
	d := &model.Dataset{
		MaxDepth:      doc.MaxDepth,
		DefaultRole:   doc.DefaultRole,
		ResourceTypes: make([]model.ResourceType, len(doc.ResourceTypes)),
		Permissions:   make([]model.Permission, len(doc.Permissions)),
		Roles:         make([]model.Role, len(doc.Roles)),
		Organizations: make([]model.Organization, len(doc.Organizations)),
		Memberships:   make([]model.Membership, len(doc.Memberships)),
		Resources:     make([]model.Resource, len(doc.Resources)),
		Assignments:   make([]model.Assignment, len(doc.Assignments)),
	}
	if len(doc.Groups) > 0 { // nil without groups, as before groups existed
		d.Groups = make([]model.Group, len(doc.Groups))
	}
	if len(doc.GroupMembers) > 0 {
		d.GroupMembers = make([]model.GroupMember, len(doc.GroupMembers))
	}
	for i, t := range doc.ResourceTypes {
		parents := t.ParentTypes
		if parents == nil {
			parents = []string{model.OrganizationType}
		}
		d.ResourceTypes[i] = model.ResourceType{Slug: t.Slug, Name: t.Name, Description: t.Description, ParentTypes: parents}
	}
	for i, p := range doc.Permissions {
		d.Permissions[i] = model.Permission{Slug: p.Slug, Name: p.Name, Description: p.Description, ResourceType: p.ResourceType}
	}
	for i, r := range doc.Roles {
		d.Roles[i] = model.Role{
			Slug: r.Slug, Name: r.Name, Description: r.Description,
			ResourceType: r.ResourceType, OrganizationID: r.OrganizationID, Permissions: r.Permissions,
		}
	}
	for i, o := range doc.Organizations {
		d.Organizations[i] = model.Organization{ID: o.ID, Name: o.Name, RootResourceID: o.RootResourceID, Attributes: b.attributes(model.KindOrganization, o.ID, i, o.Attributes)}
		if _, dup := b.orgRoots[o.ID]; !dup {
			b.orgRoots[o.ID] = d.Organizations[i].RootID()
		}
	}
	for i, m := range doc.Memberships {
		status := m.Status
		if status == "" {
			status = model.StatusActive
		}
		d.Memberships[i] = model.Membership{ID: m.ID, UserID: m.UserID, OrganizationID: m.OrganizationID, Status: status, RoleSlugs: m.Roles}
	}

	for i, g := range doc.Groups {
		d.Groups[i] = model.Group{ID: g.ID, OrganizationID: g.OrganizationID, Name: g.Name, Description: g.Description}
	}
	for i, gm := range doc.GroupMembers {
		d.GroupMembers[i] = model.GroupMember{GroupID: gm.Group, MembershipID: gm.Membership}
	}

	// Resources: ids first, so a parent may be listed after its children.
	for i, r := range doc.Resources {
		id := r.ID
		if id == "" {
			id = DeriveResourceID(r.OrganizationID, r.Type, r.ExternalID)
		}
		d.Resources[i] = model.Resource{ID: id, OrganizationID: r.OrganizationID, Type: r.Type, ExternalID: r.ExternalID, Name: r.Name, Description: r.Description,
			Attributes: b.attributes(model.KindResource, id, i, r.Attributes)}
	}
	b.resources = d.Resources
	for i, r := range doc.Resources {
		res := &d.Resources[i]
		if r.Parent == "" || r.Parent == OrganizationRef {
			continue // ParentID "" is the organization root
		}
		parent, ok := b.resolve(r.OrganizationID, r.Parent)
		if !ok {
			b.problem(model.KindResource, res.ID, i, "parent", "%s", b.unresolved(r.OrganizationID, r.Parent))
			parent = r.Parent
		}
		res.ParentID = parent
	}

	for i, a := range doc.Assignments {
		resource, why := b.assignmentResource(a)
		id := a.ID
		if id == "" {
			id = DeriveAssignmentID(a.principal(), a.Role, resource)
		}
		if why != "" {
			b.problem(model.KindAssignment, id, i, "resource", "%s", why)
		}
		d.Assignments[i] = model.Assignment{ID: id, MembershipID: a.Membership, GroupID: a.Group, RoleSlug: a.Role, ResourceID: resource}
	}
	return d
}

// principal is whom an assignment entry grants: its membership, else its
// group.
func (a assignmentEntry) principal() string {
	if a.Membership != "" {
		return a.Membership
	}
	return a.Group
}

// assignmentResource resolves an assignment's resource reference in its
// membership's (or group's) organization. When it cannot, it returns the
// reference as written (for Validate to report as an unknown id) and why.
func (b *builder) assignmentResource(a assignmentEntry) (id, why string) {
	if a.Resource != OrganizationRef && !strings.Contains(a.Resource, ":") {
		return a.Resource, "" // an id: no organization to look it up in
	}
	org, memberKnown := b.principalOrg(a.principal())
	switch {
	case !memberKnown:
		return a.Resource, fmt.Sprintf("cannot resolve %q: it is looked up in the membership's or group's organization, and %q is unknown", a.Resource, a.principal())
	case a.Resource == OrganizationRef:
		if root, ok := b.orgRoots[org]; ok {
			return root, ""
		}
		return model.RootResourceID(org), "" // Validate reports the unknown organization
	}
	if id, ok := b.resolve(org, a.Resource); ok {
		return id, ""
	}
	return a.Resource, b.unresolved(org, a.Resource)
}

// resolve returns the resource id that ref names in organization org: a
// "type:external_id" reference is looked up, anything else is taken as an
// id (whose existence Validate checks).
func (b *builder) resolve(org, ref string) (string, bool) {
	typ, ext, ok := strings.Cut(ref, ":")
	if !ok {
		return ref, true
	}
	b.index()
	if id, ok := b.byExt[extKey{org, typ, ext}]; ok {
		return id, true
	}
	if b.ids[ref] {
		return ref, true // an explicit id that happens to contain a colon
	}
	return "", false
}

// principalOrg returns the organization of membership or group id (the
// first listed of that id), building the index the first time it is asked:
// a file whose assignments name every resource by id never needs it.
func (b *builder) principalOrg(id string) (string, bool) {
	if b.memberOrg == nil {
		b.memberOrg = make(map[string]string, len(b.doc.Memberships)+len(b.doc.Groups))
		for _, m := range b.doc.Memberships {
			if _, dup := b.memberOrg[m.ID]; !dup {
				b.memberOrg[m.ID] = m.OrganizationID
			}
		}
		for _, g := range b.doc.Groups {
			if _, dup := b.memberOrg[g.ID]; !dup {
				b.memberOrg[g.ID] = g.OrganizationID
			}
		}
	}
	org, ok := b.memberOrg[id]
	return org, ok
}

// index builds the resource indexes resolve needs, the first time it is
// called: a file that names every resource by id (a generated one) never
// needs them.
func (b *builder) index() {
	if b.ids != nil {
		return
	}
	b.byExt = make(map[extKey]string, len(b.resources))
	b.ids = make(map[string]bool, len(b.resources))
	for _, r := range b.resources {
		k := extKey{r.OrganizationID, r.Type, r.ExternalID}
		if _, dup := b.byExt[k]; !dup {
			b.byExt[k] = r.ID
		}
		b.ids[r.ID] = true
	}
}

func (b *builder) unresolved(org, ref string) string {
	typ, ext, _ := strings.Cut(ref, ":")
	return fmt.Sprintf("no resource of type %q with external_id %q in organization %q", typ, ext, org)
}

// attributes returns a, as YAML decoded it, as JSON would have (numbers
// as json.Number); one that has no JSON encoding is a problem of entity
// kind id.
func (b *builder) attributes(kind, id string, index int, a model.Attributes) model.Attributes {
	n, err := model.NormalizeAttributes(map[string]any(a))
	if err != nil {
		b.problem(kind, id, index, "attributes", "%v", err)
	}
	return n
}
