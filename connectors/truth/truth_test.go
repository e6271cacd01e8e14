package truth

import (
	"errors"
	"testing"
)

func TestCommitValidate(t *testing.T) {
	key := Key{Tenant: "t", Kind: "quote", ID: "q-1"}
	cases := []struct {
		name string
		c    Commit
		ok   bool
	}{
		{"first commit", Commit{ExpectedRevision: 0, Snapshot: Snapshot{Key: key, Revision: 1}}, true},
		{"next commit", Commit{ExpectedRevision: 4, Snapshot: Snapshot{Key: key, Revision: 5}}, true},
		{"empty id", Commit{Snapshot: Snapshot{Key: Key{Tenant: "t", Kind: "quote"}, Revision: 1}}, false},
		{"empty tenant", Commit{Snapshot: Snapshot{Key: Key{Kind: "quote", ID: "q"}, Revision: 1}}, false},
		{"negative expectation", Commit{ExpectedRevision: -1, Snapshot: Snapshot{Key: key, Revision: 0}}, false},
		{"revision gap", Commit{ExpectedRevision: 1, Snapshot: Snapshot{Key: key, Revision: 3}}, false},
		{"keyless idempotency", Commit{Snapshot: Snapshot{Key: key, Revision: 1}, Idempotency: &Idempotency{Tenant: "t"}}, false},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidCommit)) {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}
