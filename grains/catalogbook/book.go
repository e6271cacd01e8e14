// Package catalogbook is the lifecycle of a tenant's catalog versions as a
// grain kind: a version is drafted, validated and published; a published
// version never changes; the tenant activates one published version, which
// new quotes are created against.
//
// The kind has two sorts of aggregate, told apart by id:
//   - "v<N>" (VersionID) is version N: its content and status, draft ->
//     validated -> published. After publish its snapshot never changes again,
//     so the truth store holds every published version immutably under
//     (tenant, "catalog", "v<N>").
//   - "index" (IndexID) numbers the versions (allocate) and holds the active
//     pointer (activate).
//
// Creating a draft is two commands: allocate on the index, then createDraft
// on the version it allocated; activate is checked against the version by the
// caller (a published version stays published), then sent to the index.
// Every command needs role RoleAdmin.
package catalogbook

import (
	"strconv"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
)

// Kind is the grain kind of catalog versions and the index.
const Kind grains.Kind = "catalog"

// RoleAdmin is the role that authors, validates, publishes and activates
// catalog versions.
const RoleAdmin = "catalog-admin"

// IndexID is the id of the index aggregate.
const IndexID = "index"

// Statuses of a version.
const (
	StatusDraft     = "draft"
	StatusValidated = "validated"
	StatusPublished = "published"
)

// VersionID is the aggregate id of version n: "v<n>".
func VersionID(n int) string { return "v" + strconv.Itoa(n) }

// ParseVersionID returns n of an id "v<n>" with n >= 1.
func ParseVersionID(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, "v")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// State is the snapshot of one aggregate of the kind: Index on the index,
// Version on a version; the zero State does not exist.
type State struct {
	Index   *Index   `json:"index,omitempty"`
	Version *Version `json:"version,omitempty"`
}

// Index numbers versions and points at the active one.
type Index struct {
	// Latest is the highest version number allocated; versions are numbered
	// 1..Latest (a number whose draft was never created is skipped).
	Latest int `json:"latest"`
	// Active is the published version new quotes use; 0 before any
	// activation.
	Active      int       `json:"active"`
	ActivatedBy string    `json:"activatedBy,omitempty"`
	ActivatedAt time.Time `json:"activatedAt,omitzero"`
}

// Version is one catalog version with its lifecycle.
type Version struct {
	Number      int              `json:"number"`
	Status      string           `json:"status"`
	Catalog     *catalog.Catalog `json:"catalog"`
	CreatedBy   string           `json:"createdBy"`
	CreatedAt   time.Time        `json:"createdAt"`
	UpdatedAt   time.Time        `json:"updatedAt"`
	PublishedBy string           `json:"publishedBy,omitempty"`
	PublishedAt time.Time        `json:"publishedAt,omitzero"`
}

// Exists reports whether s holds a created aggregate.
func Exists(s State) bool { return s.Index != nil || s.Version != nil }

// Published returns the catalog of a published version (its Version field
// is the version number); false for anything else.
func (s State) Published() (*catalog.Catalog, bool) {
	if s.Version == nil || s.Version.Status != StatusPublished || s.Version.Catalog == nil {
		return nil, false
	}
	return s.Version.Catalog, true
}

// Behavior is the catalog grain kind as the runtime drives it.
var Behavior = grains.Behavior[State]{
	Kind:          Kind,
	Decide:        Decide,
	Apply:         Apply,
	DecodeCommand: DecodeCommand,
	Exists:        Exists,
}

// Decide returns the events cmd produces against s. Checks run in this
// order: the command fits the aggregate (index or version, else
// CodeNotFound), role RoleAdmin (CodeForbidden), existence, the lifecycle
// (CodeInvalidTransition), then the content (CodeValidation, with every
// problem as a violation).
func Decide(s State, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
	if cmd == nil {
		return nil, grains.Errorf(grains.CodeBadRequest, "no catalog command")
	}
	n, isVersion := ParseVersionID(env.ID)
	isIndex := env.ID == IndexID
	switch cmd.(type) {
	case Allocate, Activate:
		if !isIndex {
			return nil, grains.Errorf(grains.CodeNotFound, "%s is a command of the catalog index, not of %s", cmd.CommandName(), env.ID)
		}
	case CreateDraft, UpdateDraft, Validate, Publish:
		if !isVersion {
			return nil, grains.Errorf(grains.CodeNotFound, "%s is a command of a catalog version, not of %s", cmd.CommandName(), env.ID)
		}
	default:
		return nil, grains.Errorf(grains.CodeBadRequest, "unknown catalog command %q", cmd.CommandName())
	}
	if err := grains.RequireRole(env, cmd.CommandName(), RoleAdmin); err != nil {
		return nil, err
	}
	switch c := cmd.(type) {
	case Allocate:
		latest := 0
		if s.Index != nil {
			latest = s.Index.Latest
		}
		return []grains.Event{VersionAllocated{Version: latest + 1}}, nil
	case Activate:
		return decideActivate(s, c, env)
	case CreateDraft:
		return decideCreate(s, c, n, env)
	case UpdateDraft:
		return decideUpdate(s, c, n, env)
	case Validate:
		return decideValidate(s, n, env)
	case Publish:
		return decidePublish(s, n, env)
	}
	return nil, nil
}

func decideActivate(s State, c Activate, env grains.Env) ([]grains.Event, error) {
	if c.Version < 1 {
		return nil, violation(CmdActivate, "/version", "required", "the version to activate must be 1 or more")
	}
	if s.Index == nil || c.Version > s.Index.Latest {
		return nil, grains.Errorf(grains.CodeNotFound, "catalog version %d not found", c.Version)
	}
	if s.Index.Active == c.Version {
		return nil, nil
	}
	return []grains.Event{VersionActivated{Version: c.Version, Previous: s.Index.Active, By: env.Actor, At: env.Now.UTC()}}, nil
}

func decideCreate(s State, c CreateDraft, n int, env grains.Env) ([]grains.Event, error) {
	if s.Version != nil {
		return nil, grains.Errorf(grains.CodeAlreadyExists, "catalog version %d already exists", n)
	}
	if c.Catalog == nil {
		return nil, violation(CmdCreateDraft, "/catalog", "required", "a draft needs a catalog")
	}
	return []grains.Event{DraftCreated{Version: n, Catalog: numbered(c.Catalog, n), By: env.Actor, At: env.Now.UTC()}}, nil
}

func decideUpdate(s State, c UpdateDraft, n int, env grains.Env) ([]grains.Event, error) {
	if s.Version == nil {
		return nil, grains.Errorf(grains.CodeNotFound, "catalog version %d not found", n)
	}
	if s.Version.Status == StatusPublished {
		return nil, grains.InvalidTransition(Kind, env.ID, s.Version.Status, CmdUpdateDraft, "a published version never changes; create a new draft")
	}
	if c.Catalog == nil {
		return nil, violation(CmdUpdateDraft, "/catalog", "required", "a draft needs a catalog")
	}
	return []grains.Event{DraftUpdated{Version: n, Catalog: numbered(c.Catalog, n), At: env.Now.UTC()}}, nil
}

func decideValidate(s State, n int, env grains.Env) ([]grains.Event, error) {
	if s.Version == nil {
		return nil, grains.Errorf(grains.CodeNotFound, "catalog version %d not found", n)
	}
	switch s.Version.Status {
	case StatusPublished:
		return nil, grains.InvalidTransition(Kind, env.ID, s.Version.Status, CmdValidate, "")
	case StatusValidated:
		return nil, nil
	}
	if err := problems(CmdValidate, s.Version.Catalog); err != nil {
		return nil, err
	}
	return []grains.Event{DraftValidated{Version: n, At: env.Now.UTC()}}, nil
}

func decidePublish(s State, n int, env grains.Env) ([]grains.Event, error) {
	if s.Version == nil {
		return nil, grains.Errorf(grains.CodeNotFound, "catalog version %d not found", n)
	}
	switch s.Version.Status {
	case StatusPublished:
		return nil, nil
	case StatusDraft:
		return nil, grains.InvalidTransition(Kind, env.ID, s.Version.Status, CmdPublish, "validate the draft first; any change after validate needs a new validate")
	}
	// Validated and unchanged since: Validate is pure, so this cannot fail,
	// but a published version must be valid whatever the history says.
	if err := problems(CmdPublish, s.Version.Catalog); err != nil {
		return nil, err
	}
	return []grains.Event{VersionPublished{Version: n, By: env.Actor, At: env.Now.UTC()}}, nil
}

// problems runs catalog.Problems and returns them all as one
// CodeValidation error with pointers under /catalog.
func problems(command string, c *catalog.Catalog) error {
	vs := c.Problems()
	if len(vs) == 0 {
		return nil
	}
	var out grains.Violations
	for _, v := range vs {
		out.Add("/catalog"+v.Pointer, v.Code, v.Message)
	}
	return out.Err(command)
}

func violation(command, pointer, code, msg string) error {
	var v grains.Violations
	v.Add(pointer, code, msg)
	return v.Err(command)
}

// numbered returns a copy of c whose Version is n.
func numbered(c *catalog.Catalog, n int) *catalog.Catalog {
	cp := *c
	cp.Version = n
	return &cp
}

// Apply folds one event into s.
func Apply(s State, ev grains.Event) State {
	switch e := ev.(type) {
	case VersionAllocated:
		idx := Index{}
		if s.Index != nil {
			idx = *s.Index
		}
		idx.Latest = e.Version
		s.Index = &idx
	case VersionActivated:
		idx := *s.Index
		idx.Active, idx.ActivatedBy, idx.ActivatedAt = e.Version, e.By, e.At
		s.Index = &idx
	case DraftCreated:
		s.Version = &Version{Number: e.Version, Status: StatusDraft, Catalog: e.Catalog, CreatedBy: e.By, CreatedAt: e.At, UpdatedAt: e.At}
	case DraftUpdated:
		v := *s.Version
		v.Catalog, v.Status, v.UpdatedAt = e.Catalog, StatusDraft, e.At
		s.Version = &v
	case DraftValidated:
		v := *s.Version
		v.Status = StatusValidated
		s.Version = &v
	case VersionPublished:
		v := *s.Version
		v.Status, v.PublishedBy, v.PublishedAt = StatusPublished, e.By, e.At
		s.Version = &v
	}
	return s
}
