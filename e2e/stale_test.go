package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
)

// TestStaleActivation runs two platforms on one PostgreSQL database, so
// that one quote is active in both nodes at once (what a membership change
// can cause in a cluster). Each node's copy goes stale when the other
// commits; the truth store's revision check must turn every stale decision
// into a reload and a fresh decision, never a lost update.
//
// Only the real mode runs here: the embedded store belongs to one process,
// so two platforms cannot share it. For the embedded store the same case is
// covered at the node level by actors/node_test.go (two members on one
// store).
func TestStaleActivation(t *testing.T) {
	t.Run(string(real), func(t *testing.T) {
		dsn := testenv.PostgresDB(t)
		a := startPlatform(t, real, platformOpts{noStreams: true, postgresDSN: dsn})
		b := startPlatform(t, real, platformOpts{noStreams: true, postgresDSN: dsn})
		da := newHTTPDoor(a.p.HTTPAddr, a.salesApprover())
		db := newHTTPDoor(b.p.HTTPAddr, b.salesApprover())
		offering := firstOffering(t, da)

		id := createQuote(t, da, "")
		// Activate the quote in both nodes.
		da.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get through A", 200)
		db.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get through B", 200)

		ok := 0 // successful commands after create
		quantities := map[int]bool{}
		addLine := func(d door, qty int) reply {
			r := d.do(t, grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": qty}, opts{})
			if r.Status == 200 {
				ok++
				quantities[qty] = true
			}
			return r
		}
		addLine(da, 1).expect(t, "A addLine 1", 200)
		addLine(da, 2).expect(t, "A addLine 2", 200)
		// B's copy is at revision 1; its commit must hit the revision check,
		// reload revision 3 and decide again.
		r := addLine(db, 3).expect(t, "B addLine 3 (stale)", 200)
		var q quoteView
		r.decode(t, &q)
		if r.ETag != `"4"` || len(q.Lines) != 3 {
			t.Fatalf("stale B: etag %s lines %+v, want revision 4 with 3 lines", r.ETag, q.Lines)
		}
		// Now A is stale.
		r = addLine(da, 4).expect(t, "A addLine 4 (stale)", 200)
		r.decode(t, &q)
		if r.ETag != `"5"` || len(q.Lines) != 4 {
			t.Fatalf("stale A: etag %s lines %+v, want revision 5 with 4 lines", r.ETag, q.Lines)
		}

		// Both nodes write at once. A command may lose the race and say so
		// (409 conflict); none may be lost silently.
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			d := da
			if i%2 == 1 {
				d = db
			}
			qty := 10 + i
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := d.try(grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": qty}, opts{})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("concurrent addLine %d: %v", qty, err)
				case r.Status == 200:
					ok++
					quantities[qty] = true
				case r.Status == 409 && r.Code == "conflict":
				default:
					t.Errorf("concurrent addLine %d: status %d code %q: %s", qty, r.Status, r.Code, r.Body)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}

		// The truth: revision = create + every successful command, and every
		// successful line is there once.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		snap, err := a.p.Store.Load(ctx, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindQuote), ID: id})
		if err != nil {
			t.Fatal(err)
		}
		var st quote.State
		if err := json.Unmarshal(snap.State, &st); err != nil {
			t.Fatal(err)
		}
		if snap.Revision != int64(ok)+1 {
			t.Fatalf("revision %d after %d successful commands, want %d", snap.Revision, ok, ok+1)
		}
		seenIDs := map[string]bool{}
		seenQty := map[int]bool{}
		for _, l := range st.Lines {
			if seenIDs[l.LineID] {
				t.Fatalf("line id %s twice: %+v", l.LineID, st.Lines)
			}
			seenIDs[l.LineID] = true
			seenQty[l.Quantity] = true
		}
		if len(st.Lines) != len(quantities) {
			t.Fatalf("%d lines, want %d: %+v", len(st.Lines), len(quantities), st.Lines)
		}
		for qty := range quantities {
			if !seenQty[qty] {
				t.Fatalf("line of quantity %d was acknowledged but is missing: %+v", qty, st.Lines)
			}
		}
		// Both nodes answer the latest revision after their next command,
		// whichever of them is stale now.
		for _, d := range []*httpDoor{da, db} {
			r := addLine(d, 100+len(quantities)).expect(t, "addLine after the race", 200)
			if want := strconv.Quote(fmt.Sprint(ok + 1)); r.ETag != want {
				t.Fatalf("addLine through %s: etag %s, want %s", d.base, r.ETag, want)
			}
		}
	})
}
