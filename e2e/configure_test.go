package e2e

import (
	"encoding/json"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

// violationPointers returns the violation pointers of a problem reply.
func violationPointers(t *testing.T, r reply) []string {
	t.Helper()
	var p struct {
		Violations []struct {
			Pointer string `json:"pointer"`
			Code    string `json:"code"`
		} `json:"violations"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, r.Body)
	}
	out := make([]string, len(p.Violations))
	for i, v := range p.Violations {
		out[i] = v.Pointer + " " + v.Code
	}
	return out
}

// TestConfiguredLines: characteristics are checked on addLine, the whole
// configuration on price, over HTTP and NATS, in both modes; a
// characteristics change after approval starts a new revision.
func TestConfiguredLines(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		doors := []door{
			newHTTPDoor(e.p.HTTPAddr, e.salesApprover()),
			newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "demo", e.salesApprover()),
		}
		for _, d := range doors {
			t.Run(d.name(), func(t *testing.T) { configuredJourney(t, d) })
		}
	})
}

func configuredJourney(t *testing.T, d door) {
	id := createQuote(t, d, "")
	add := func(body map[string]any) reply {
		return d.do(t, grains.KindQuote, "addLine", id, body, opts{})
	}
	r := add(map[string]any{"offeringId": "dia-1g", "quantity": 1, "characteristics": map[string]any{"bandwidth": "10G", "color": "red"}})
	r.expectProblem(t, "bad characteristics", 422, "validation_failed")
	got := violationPointers(t, r)
	mustf(t, len(got) == 2 && got[0] == "/characteristics/bandwidth value_not_allowed" && got[1] == "/characteristics/color characteristic_unknown",
		"violations %v", got)

	r = add(map[string]any{"offeringId": "dia-1g", "quantity": 1, "characteristics": map[string]any{"bandwidth": "500M"}}).expect(t, "configured addLine", 200)
	var q quoteView
	r.decode(t, &q)
	mustf(t, len(q.Lines) == 1 && q.Lines[0].Characteristics["bandwidth"] == "500M" && q.Lines[0].Characteristics["sla"] == "standard",
		"configured line %+v", q.Lines)
	add(map[string]any{"offeringId": "branch-bundle", "quantity": 1}).expect(t, "bundle line", 200)
	r = d.do(t, grains.KindQuote, "price", id, nil, opts{})
	r.expectProblem(t, "price an incomplete bundle", 422, "validation_failed")
	got = violationPointers(t, r)
	mustf(t, len(got) == 2 && got[0] == "/lines/1 bundle_child_missing" && got[1] == "/lines/1 bundle_child_missing", "violations %v", got)
	add(map[string]any{"offeringId": "sdwan-edge-m", "quantity": 1, "parentLineId": "2"}).expect(t, "edge in bundle", 200)
	add(map[string]any{"offeringId": "sdwan-license", "quantity": 1, "parentLineId": "2"}).expect(t, "license in bundle", 200)
	for _, c := range []string{"price", "submit", "approve"} {
		d.do(t, grains.KindQuote, c, id, nil, opts{}).expect(t, c, 200)
	}
	q = quoteView{}
	getReply := d.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get", 200)
	getReply.decode(t, &q)
	hash1 := q.Price.Hash

	// After approval a characteristics change starts revision 2.
	r = d.do(t, grains.KindQuote, "setCharacteristics", id, map[string]any{"lineId": "1", "characteristics": map[string]any{"bandwidth": "1G"}}, opts{}).
		expect(t, "setCharacteristics", 200)
	q = quoteView{}
	r.decode(t, &q)
	mustf(t, q.Revision == 2 && q.Status == quote.StatusInProgress && q.Lines[0].Characteristics["bandwidth"] == "1G" &&
		len(q.Revisions) == 1 && q.Revisions[0].Lines[0].Characteristics["bandwidth"] == "500M", "after setCharacteristics: %s", r.Body)
	r = d.do(t, grains.KindQuote, "price", id, nil, opts{}).expect(t, "price revision 2", 200)
	q = quoteView{}
	r.decode(t, &q)
	mustf(t, q.Price.Hash != hash1 && q.Price.OneTimeTotal == q.Revisions[0].Price.OneTimeTotal,
		"revision 2 prices to hash %s (revision 1 %s), totals %s vs %s", q.Price.Hash, hash1, q.Price.OneTimeTotal, q.Revisions[0].Price.OneTimeTotal)
}
