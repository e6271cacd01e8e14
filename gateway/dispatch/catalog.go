package dispatch

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalogbook"
)

// Catalog commands of the front doors (Request.Kind KindCatalog). Request.ID
// carries the version number where a command needs one.
const (
	CatalogGet         = CommandGet // the active published version
	CatalogVersions    = "versions" // list every version with its status
	CatalogVersion     = "version"  // one version, any status
	CatalogCreateDraft = catalogbook.CmdCreateDraft
	CatalogUpdateDraft = catalogbook.CmdUpdateDraft
	CatalogValidate    = catalogbook.CmdValidate
	CatalogPublish     = catalogbook.CmdPublish
	CatalogActivate    = catalogbook.CmdActivate
)

// CatalogCommands lists the catalog commands the front doors accept.
func CatalogCommands() []string {
	return []string{CatalogGet, CatalogVersions, CatalogVersion, CatalogCreateDraft, CatalogUpdateDraft, CatalogValidate, CatalogPublish, CatalogActivate}
}

// CatalogPreparer is an optional ability of a Catalog: PrepareCatalogs
// brings a tenant's catalog storage up to date (e.g. migrates a legacy
// catalog to version 1) before versions are listed or allocated. Safe for
// concurrent use.
type CatalogPreparer interface {
	PrepareCatalogs(ctx context.Context, tenant grains.TenantID) error
}

// catalogDo serves the catalog commands: reads of versions, and the
// lifecycle commands, which go to the catalog grains (kind
// catalogbook.Kind, ids "index" and "v<N>").
func (d *Dispatcher) catalogDo(ctx context.Context, req Request) Reply {
	switch req.Command {
	case CatalogGet:
		return d.catalog(ctx, req)
	case CatalogVersions:
		return d.catalogVersions(ctx, req)
	}
	if !slices.Contains(CatalogCommands(), req.Command) {
		return Fail(grains.Errorf(grains.CodeNotFound, "no command %q on the catalog", req.Command), req.Instance)
	}
	if req.Command != CatalogVersion && !slices.Contains(req.Principal.Roles, catalogbook.RoleAdmin) {
		return Fail(grains.Errorf(grains.CodeForbidden, "%s requires role %s", req.Command, catalogbook.RoleAdmin), req.Instance)
	}
	if req.Command == CatalogCreateDraft {
		return d.catalogCreate(ctx, req)
	}
	n, err := versionNumber(req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	switch req.Command {
	case CatalogVersion:
		res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, catalogbook.Kind, catalogbook.VersionID(n))
		if err != nil {
			return Fail(notFoundVersion(err, n), req.Instance)
		}
		return versionReply(http.StatusOK, res, req.Instance)
	case CatalogActivate:
		return d.catalogActivate(ctx, req, n)
	}
	payload, err := ObjectPayload(req.Payload)
	if err != nil {
		return Fail(err, req.Instance)
	}
	res, err := d.send(ctx, req, catalogbook.VersionID(n), req.Command, payload, ClientKey(req.IdempotencyKey), req.IfMatch)
	if err != nil {
		return Fail(err, req.Instance)
	}
	return versionReply(http.StatusOK, res, req.Instance)
}

func (d *Dispatcher) send(ctx context.Context, req Request, id, name string, payload []byte, key string, ifMatch int64) (call.Result, error) {
	return d.deps.Sender.Send(ctx, call.Command{
		Tenant: req.Principal.Tenant, Kind: catalogbook.Kind, ID: id, Name: name, Payload: payload,
		IdempotencyKey: key, IfMatch: ifMatch,
		Actor: req.Principal.Subject, Roles: req.Principal.Roles, CorrelationID: req.CorrelationID,
	})
}

func (d *Dispatcher) prepare(ctx context.Context, tenant grains.TenantID) error {
	if p, ok := d.deps.Catalog.(CatalogPreparer); ok {
		return p.PrepareCatalogs(ctx, tenant)
	}
	return nil
}

// catalogCreate allocates the next version number on the index, then
// creates that version as a draft, from the body's catalog or a copy of
// version "from". With an Idempotency-Key both steps repeat as one: a retry
// gets the same version.
func (d *Dispatcher) catalogCreate(ctx context.Context, req Request) Reply {
	var body struct {
		Catalog json.RawMessage `json:"catalog"`
		From    int             `json:"from"`
	}
	payload, err := ObjectPayload(req.Payload)
	if err == nil {
		err = grains.DecodePayload(CatalogCreateDraft, payload, &body, true)
	}
	if err != nil {
		return Fail(err, req.Instance)
	}
	hasCatalog := len(body.Catalog) > 0 && string(body.Catalog) != "null"
	if hasCatalog == (body.From > 0) {
		var v grains.Violations
		v.Add("/catalog", "required", `give either "catalog" or "from" (a version to copy)`)
		return Fail(v.Err(CatalogCreateDraft), req.Instance)
	}
	if err := d.prepare(ctx, req.Principal.Tenant); err != nil {
		return Fail(err, req.Instance)
	}
	content := body.Catalog
	if body.From > 0 {
		res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, catalogbook.Kind, catalogbook.VersionID(body.From))
		if err != nil {
			return Fail(notFoundVersion(err, body.From), req.Instance)
		}
		var s catalogbook.State
		if err := json.Unmarshal(res.State, &s); err != nil || s.Version == nil {
			return Fail(grains.Errorf(grains.CodeNotFound, "catalog version %d not found", body.From), req.Instance)
		}
		if content, err = json.Marshal(s.Version.Catalog); err != nil {
			return Fail(err, req.Instance)
		}
	}
	allocKey, draftKey := "", ""
	if req.IdempotencyKey != "" {
		allocKey, draftKey = catalogKeyPrefix+req.IdempotencyKey+"/allocate", catalogKeyPrefix+req.IdempotencyKey+"/draft"
	}
	res, err := d.send(ctx, req, catalogbook.IndexID, catalogbook.CmdAllocate, []byte("{}"), allocKey, 0)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var idx catalogbook.State
	if err := json.Unmarshal(res.State, &idx); err != nil || idx.Index == nil {
		return Fail(grains.Errorf(grains.CodeInternal, "catalog index reply without index"), req.Instance)
	}
	n := idx.Index.Latest
	draft, err := json.Marshal(struct {
		Catalog json.RawMessage `json:"catalog"`
	}{content})
	if err != nil {
		return Fail(err, req.Instance)
	}
	res, err = d.send(ctx, req, catalogbook.VersionID(n), catalogbook.CmdCreateDraft, draft, draftKey, 0)
	if err != nil {
		return Fail(err, req.Instance)
	}
	r := versionReply(http.StatusCreated, res, req.Instance)
	r.Location = "/v1/catalog/versions/" + strconv.Itoa(n)
	return r
}

// catalogKeyPrefix namespaces the keys of the two steps of createDraft
// apart from clients' own keys (ClientKeyPrefix).
const catalogKeyPrefix = "catalog-draft:"

// catalogActivate checks that version n is published (a published version
// stays published), then points the index at it.
func (d *Dispatcher) catalogActivate(ctx context.Context, req Request, n int) Reply {
	if err := d.prepare(ctx, req.Principal.Tenant); err != nil {
		return Fail(err, req.Instance)
	}
	res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, catalogbook.Kind, catalogbook.VersionID(n))
	if err != nil {
		return Fail(notFoundVersion(err, n), req.Instance)
	}
	var s catalogbook.State
	if err := json.Unmarshal(res.State, &s); err != nil || s.Version == nil {
		return Fail(grains.Errorf(grains.CodeNotFound, "catalog version %d not found", n), req.Instance)
	}
	if _, ok := s.Published(); !ok {
		return Fail(grains.InvalidTransition(catalogbook.Kind, catalogbook.VersionID(n), s.Version.Status, CatalogActivate, "only a published version can be activated"), req.Instance)
	}
	payload, _ := json.Marshal(catalogbook.Activate{Version: n})
	res, err = d.send(ctx, req, catalogbook.IndexID, catalogbook.CmdActivate, payload, ClientKey(req.IdempotencyKey), 0)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var idx catalogbook.State
	if err := json.Unmarshal(res.State, &idx); err != nil || idx.Index == nil {
		return Fail(grains.Errorf(grains.CodeInternal, "catalog index reply without index"), req.Instance)
	}
	body, err := json.Marshal(idx.Index)
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, "", 0)
}

// VersionSummary is one entry of the version list.
type VersionSummary struct {
	Number      int    `json:"number"`
	Status      string `json:"status"`
	Active      bool   `json:"active"`
	CreatedBy   string `json:"createdBy"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
	PublishedBy string `json:"publishedBy,omitempty"`
	PublishedAt string `json:"publishedAt,omitempty"`
}

// catalogVersions lists versions 1..latest (numbers allocated but never
// drafted are skipped) with the active one marked.
func (d *Dispatcher) catalogVersions(ctx context.Context, req Request) Reply {
	if err := d.prepare(ctx, req.Principal.Tenant); err != nil {
		return Fail(err, req.Instance)
	}
	out := struct {
		Active   int              `json:"active"`
		Latest   int              `json:"latest"`
		Versions []VersionSummary `json:"versions"`
	}{Versions: []VersionSummary{}}
	res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, catalogbook.Kind, catalogbook.IndexID)
	switch {
	case grains.CodeOf(err) == grains.CodeNotFound:
	case err != nil:
		return Fail(err, req.Instance)
	default:
		var idx catalogbook.State
		if err := json.Unmarshal(res.State, &idx); err != nil || idx.Index == nil {
			return Fail(grains.Errorf(grains.CodeInternal, "catalog index without index"), req.Instance)
		}
		out.Active, out.Latest = idx.Index.Active, idx.Index.Latest
	}
	const ts = "2006-01-02T15:04:05.999999999Z07:00"
	for n := 1; n <= out.Latest; n++ {
		res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, catalogbook.Kind, catalogbook.VersionID(n))
		if grains.CodeOf(err) == grains.CodeNotFound {
			continue
		}
		if err != nil {
			return Fail(err, req.Instance)
		}
		var s catalogbook.State
		if err := json.Unmarshal(res.State, &s); err != nil || s.Version == nil {
			continue
		}
		v := s.Version
		sum := VersionSummary{Number: n, Status: v.Status, Active: n == out.Active, CreatedBy: v.CreatedBy,
			CreatedAt: v.CreatedAt.Format(ts), UpdatedAt: v.UpdatedAt.Format(ts), PublishedBy: v.PublishedBy}
		if !v.PublishedAt.IsZero() {
			sum.PublishedAt = v.PublishedAt.Format(ts)
		}
		out.Versions = append(out.Versions, sum)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, "", 0)
}

// versionReply answers with the version of a catalog grain's state.
func versionReply(status int, res call.Result, instance string) Reply {
	var s catalogbook.State
	if err := json.Unmarshal(res.State, &s); err != nil || s.Version == nil {
		return Fail(grains.Errorf(grains.CodeInternal, "catalog version reply without version"), instance)
	}
	body, err := json.Marshal(s.Version)
	if err != nil {
		return Fail(err, instance)
	}
	r := ok(status, body, strconv.Itoa(s.Version.Number), res.Revision)
	r.Replayed = res.Replayed
	return r
}

func versionNumber(id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || strconv.Itoa(n) != id {
		return 0, grains.Errorf(grains.CodeBadRequest, "the catalog version must be a number of 1 or more, not %q", id)
	}
	return n, nil
}

func notFoundVersion(err error, n int) error {
	if grains.CodeOf(err) == grains.CodeNotFound {
		return grains.Errorf(grains.CodeNotFound, "catalog version %d not found", n)
	}
	return err
}
