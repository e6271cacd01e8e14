package catalogbook

import (
	"testing"

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
