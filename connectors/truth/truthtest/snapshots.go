package truthtest

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/grainline/grainline/connectors/truth"
)

// testSnapshotList: Snapshots walks one kind across tenants, with each
// aggregate's latest state, and stops at the callback's error.
func testSnapshotList(t *testing.T, h Harness) {
	s, _ := open(t, h)
	l, ok := s.(truth.SnapshotLister)
	if !ok {
		t.Fatalf("%T does not implement truth.SnapshotLister", s)
	}
	keys := []truth.Key{
		{Tenant: "acme", Kind: "order", ID: "o-1"},
		{Tenant: "acme", Kind: "order", ID: "o-2"},
		{Tenant: "globex", Kind: "order", ID: "o-1"},
		{Tenant: "acme", Kind: "quote", ID: "q-1"},
		{Tenant: "acme", Kind: "orderx", ID: "o-3"},
	}
	for _, k := range keys {
		mustCommit(t, s, NewCommit(k, 0, ""))
	}
	mustCommit(t, s, NewCommit(keys[1], 1, ""))

	var got []string
	err := l.Snapshots(context.Background(), "order", func(snap truth.Snapshot) error {
		if !bytes.Equal(snap.State, StateFor(snap.Key, snap.Revision)) || snap.UpdatedAt.IsZero() {
			t.Errorf("snapshot %v rev %d: state %q", snap.Key, snap.Revision, snap.State)
		}
		got = append(got, snap.Key.Tenant+"/"+snap.Key.ID+"@"+string(rune('0'+snap.Revision)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if want := []string{"acme/o-1@1", "acme/o-2@2", "globex/o-1@1"}; !equalStrings(got, want) {
		t.Fatalf("order snapshots %v, want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := l.Snapshots(context.Background(), "order", func(truth.Snapshot) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("callback error: %v after %d calls, want stop after 1", err, n)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
