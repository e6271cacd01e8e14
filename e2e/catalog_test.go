package e2e

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/catalogbook"
	"github.com/grainline/grainline/internal/platform"
)

type versionView struct {
	Number  int             `json:"number"`
	Status  string          `json:"status"`
	Catalog catalog.Catalog `json:"catalog"`
}

type versionList struct {
	Active   int `json:"active"`
	Latest   int `json:"latest"`
	Versions []struct {
		Number int    `json:"number"`
		Status string `json:"status"`
		Active bool   `json:"active"`
	} `json:"versions"`
}

// TestCatalogLifecycle: a catalog-admin drafts, validates (seeing every
// problem at once), publishes and activates a version on both doors; a
// quote created before keeps deciding against the version it was created
// with, new quotes use the active one, and an earlier version can be
// re-activated. Everything else is refused with stable codes.
func TestCatalogLifecycle(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		admin := newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, catalogbook.RoleAdmin))
		adminNATS := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, e.token(platform.DemoTenant, catalogbook.RoleAdmin))
		sales := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())

		// The seeded demo catalog is published, active version 1.
		var l versionList
		admin.do(t, "catalog", "versions", "", nil, opts{}).expect(t, "list", 200).decode(t, &l)
		if l.Active != 1 || l.Latest != 1 || len(l.Versions) != 1 || l.Versions[0].Status != catalogbook.StatusPublished || !l.Versions[0].Active {
			t.Fatalf("seeded versions: %+v", l)
		}

		q1 := createQuote(t, sales, "")
		line := func(q, offering string) reply {
			return sales.do(t, grains.KindQuote, "addLine", q, map[string]any{"offeringId": offering, "quantity": 1}, opts{})
		}
		line(q1, "dia-1g").expect(t, "addLine on v1", 200)

		// Only catalog-admin authors.
		sales.do(t, "catalog", "createDraft", "", map[string]any{"from": 1}, opts{}).expectProblem(t, "sales creates a draft", 403, "forbidden")
		sales.do(t, "catalog", "activate", "1", nil, opts{}).expectProblem(t, "sales activates", 403, "forbidden")

		// A draft copied from v1, retried with the same key: one version.
		var v versionView
		r := admin.do(t, "catalog", "createDraft", "", map[string]any{"from": 1}, opts{idemKey: "draft-2"}).expect(t, "createDraft", 201)
		r.decode(t, &v)
		if v.Number != 2 || v.Status != catalogbook.StatusDraft || r.ID != "2" || v.Catalog.Version != 2 || len(v.Catalog.Offerings) == 0 {
			t.Fatalf("draft: id %s %+v", r.ID, v)
		}
		again := admin.do(t, "catalog", "createDraft", "", map[string]any{"from": 1}, opts{idemKey: "draft-2"}).expect(t, "createDraft again", 201)
		if again.ID != "2" || !again.Replayed {
			t.Fatalf("repeated createDraft: id %s replayed %v", again.ID, again.Replayed)
		}

		// A broken draft: every problem at once, with pointers.
		broken := catalog.Demo()
		broken.Currency = ""
		broken.Offerings[0].Name = ""
		broken.Rules = append(broken.Rules, catalog.Rule{Kind: catalog.RuleRequires, OfferingID: "dia-1g", TargetID: "gone"})
		admin.do(t, "catalog", "updateDraft", "2", map[string]any{"catalog": broken}, opts{}).expect(t, "updateDraft broken", 200)
		admin.do(t, "catalog", "publish", "2", nil, opts{}).expectProblem(t, "publish a draft", 409, "invalid_transition")
		r = admin.do(t, "catalog", "validate", "2", nil, opts{})
		r.expectProblem(t, "validate broken", 422, "validation_failed")
		got := map[string]bool{}
		for _, vi := range r.problem(t).Violations {
			got[vi.Pointer] = true
		}
		for _, want := range []string{"/catalog/currency", "/catalog/offerings/0/name", "/catalog/rules/2/targetId"} {
			if !got[want] {
				t.Fatalf("validate violations %v lack %s", got, want)
			}
		}

		// The fixed draft: v1's catalog with a new offering and a new price.
		next := catalog.Demo()
		next.Offerings = append(next.Offerings, catalog.Offering{ID: "dia-10g", Name: "DIA 10 Gbps", Kind: catalog.KindService, Unit: "circuit",
			Prices: next.Offerings[2].Prices})
		admin.do(t, "catalog", "updateDraft", "2", map[string]any{"catalog": next}, opts{}).expect(t, "updateDraft", 200)
		admin.do(t, "catalog", "validate", "2", nil, opts{}).expect(t, "validate", 200).decode(t, &v)
		if v.Status != catalogbook.StatusValidated {
			t.Fatalf("validated: %+v", v.Status)
		}
		admin.do(t, "catalog", "activate", "2", nil, opts{}).expectProblem(t, "activate an unpublished version", 409, "invalid_transition")
		adminNATS.do(t, "catalog", "publish", "2", nil, opts{}).expect(t, "publish over NATS", 200).decode(t, &v)
		if v.Status != catalogbook.StatusPublished {
			t.Fatalf("published: %+v", v.Status)
		}
		admin.do(t, "catalog", "updateDraft", "2", map[string]any{"catalog": broken}, opts{}).expectProblem(t, "change a published version", 409, "invalid_transition")
		// Published but not active yet: new quotes still get v1.
		q0 := createQuote(t, sales, "")
		line(q0, "dia-10g").expectProblem(t, "v2 offering before activation", 422, "validation_failed")

		adminNATS.do(t, "catalog", "activate", "2", nil, opts{}).expect(t, "activate over NATS", 200)
		var active catalog.Catalog
		sales.do(t, "catalog", "get", "", nil, opts{}).expect(t, "active catalog", 200).decode(t, &active)
		if active.Version != 2 {
			t.Fatalf("active catalog is version %d", active.Version)
		}
		if _, ok := active.Offering("dia-10g"); !ok {
			t.Fatal("active catalog lacks dia-10g")
		}

		// q1 stays on v1: v2's offering is unknown to it.
		line(q1, "dia-10g").expectProblem(t, "v2 offering on a v1 quote", 422, "validation_failed")
		var qv quoteView
		line(q1, "sdwan-edge-m").expect(t, "v1 offering on a v1 quote", 200).decode(t, &qv)
		if qv.CatalogVersion != 1 {
			t.Fatalf("q1 catalog version %d", qv.CatalogVersion)
		}
		// A new quote is created against v2.
		q2 := createQuote(t, sales, "")
		line(q2, "dia-10g").expect(t, "v2 offering on a v2 quote", 200).decode(t, &qv)
		if qv.CatalogVersion != 2 {
			t.Fatalf("q2 catalog version %d", qv.CatalogVersion)
		}

		// Back to v1: new quotes use it again; v2 is still listed, published.
		admin.do(t, "catalog", "activate", "1", nil, opts{}).expect(t, "re-activate v1", 200)
		q3 := createQuote(t, sales, "")
		line(q3, "dia-10g").expectProblem(t, "v2 offering on a quote after re-activating v1", 422, "validation_failed")
		adminNATS.do(t, "catalog", "versions", "", nil, opts{}).expect(t, "list over NATS", 200).decode(t, &l)
		if l.Active != 1 || l.Latest != 2 || len(l.Versions) != 2 || l.Versions[1].Status != catalogbook.StatusPublished || l.Versions[1].Active {
			t.Fatalf("versions after re-activation: %+v", l)
		}
		admin.do(t, "catalog", "version", "9", nil, opts{}).expectProblem(t, "missing version", 404, "not_found")
		admin.do(t, "catalog", "version", "x", nil, opts{}).expectProblem(t, "bad version", 400, "bad_request")

		// Every change is audited on the aggregate it changed.
		idx := truth.Key{Tenant: string(platform.DemoTenant), Kind: string(catalogbook.Kind), ID: catalogbook.IndexID}
		if n := countActions(auditTrail(t, e.p.Store, idx), catalogbook.CmdActivate); n < 3 {
			t.Fatalf("%d activate audit records on the index, want seed + 2", n)
		}
		v2 := truth.Key{Tenant: string(platform.DemoTenant), Kind: string(catalogbook.Kind), ID: catalogbook.VersionID(2)}
		trail := auditTrail(t, e.p.Store, v2)
		for _, action := range []string{catalogbook.CmdCreateDraft, catalogbook.CmdUpdateDraft, catalogbook.CmdValidate, catalogbook.CmdPublish} {
			if countActions(trail, action) == 0 {
				t.Fatalf("no %s audit record on v2: %d records", action, len(trail))
			}
		}
		// The published version is stored as it was published.
		snap, err := e.p.Store.Load(t.Context(), v2)
		if err != nil {
			t.Fatal(err)
		}
		var s catalogbook.State
		if err := json.Unmarshal(snap.State, &s); err != nil || s.Version.Status != catalogbook.StatusPublished {
			t.Fatalf("stored v2: %v %s", err, strconv.Quote(string(snap.State[:min(80, len(snap.State))])))
		}
	})
}
