package catalogbook

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/grains/catalog"
)

func TestParseVersionID(t *testing.T) {
	for _, tt := range []struct {
		id string
		n  int
		ok bool
	}{
		{"v1", 1, true}, {"v42", 42, true}, {"v0", 0, false}, {"v-1", 0, false}, {"v01", 0, false},
		{"1", 0, false}, {"v", 0, false}, {"index", 0, false}, {"current", 0, false}, {"v1x", 0, false},
	} {
		n, ok := ParseVersionID(tt.id)
		if n != tt.n || ok != tt.ok {
			t.Errorf("ParseVersionID(%q) = %d, %v; want %d, %v", tt.id, n, ok, tt.n, tt.ok)
		}
		if ok && VersionID(n) != tt.id {
			t.Errorf("VersionID(%d) = %q", n, VersionID(n))
		}
	}
}

func TestPublished(t *testing.T) {
	c := catalog.Demo()
	for _, tt := range []struct {
		name string
		s    State
		ok   bool
	}{
		{"zero", State{}, false},
		{"index", State{Index: &Index{Latest: 1, Active: 1}}, false},
		{"draft", State{Version: &Version{Number: 1, Status: StatusDraft, Catalog: c}}, false},
		{"validated", State{Version: &Version{Number: 1, Status: StatusValidated, Catalog: c}}, false},
		{"published", State{Version: &Version{Number: 1, Status: StatusPublished, Catalog: c}}, true},
		{"published without content", State{Version: &Version{Number: 1, Status: StatusPublished}}, false},
	} {
		if got, ok := tt.s.Published(); ok != tt.ok || (ok && got != c) {
			t.Errorf("%s: Published() = %v, %v", tt.name, got, ok)
		}
	}
}

// A draft was never published and an index never activated: their JSON
// (the API's view of a version) leaves the times out instead of showing
// 0001-01-01T00:00:00Z.
func TestUnsetTimesAreOmitted(t *testing.T) {
	b, err := json.Marshal(State{Version: &Version{Number: 1, Status: StatusDraft, CreatedAt: time.Unix(1, 0).UTC(), UpdatedAt: time.Unix(1, 0).UTC()}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "publishedAt") || strings.Contains(string(b), "0001-01-01") {
		t.Errorf("draft: %s", b)
	}
	b, _ = json.Marshal(Index{Latest: 1})
	if strings.Contains(string(b), "activatedAt") {
		t.Errorf("index: %s", b)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, _ = json.Marshal(Version{Number: 1, Status: StatusPublished, PublishedAt: at})
	var back Version
	if err := json.Unmarshal(b, &back); err != nil || !back.PublishedAt.Equal(at) {
		t.Errorf("published: %s -> %v, %v", b, back.PublishedAt, err)
	}
}
