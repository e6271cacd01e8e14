package embedded_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/truthtest"
)

var harness = truthtest.Harness{
	NewLocation: func(t testing.TB) string { return filepath.Join(t.TempDir(), "data") },
	Open: func(t testing.TB, dir string) truth.Store {
		s, err := embedded.Open(embedded.Config{Dir: dir}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("open embedded store: %v", err)
		}
		return s
	},
	TamperAudit: func(t testing.TB, s truth.Store, _, tenant string, seq int64, reason string) {
		if err := s.(*embedded.Store).RewriteAudit(tenant, seq, reason); err != nil {
			t.Fatalf("rewrite audit record: %v", err)
		}
	},
}

func TestConformance(t *testing.T) { truthtest.Run(t, harness) }

func TestCrash(t *testing.T) { truthtest.Crash(t, harness, "TestCrashChild") }

func TestCrashChild(t *testing.T) { truthtest.CrashChild(t, harness) }

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := embedded.Open(embedded.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = embedded.Open(embedded.Config{Dir: dir}, nil)
	if !errors.Is(err, embedded.ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "another process") || !strings.Contains(msg, strconv.Itoa(os.Getpid())) {
		t.Fatalf("lock error should name the owner: %q", msg)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.Open(embedded.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

func TestClosedStore(t *testing.T) {
	s, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(t.Context(), truth.Key{Tenant: "t", Kind: "k", ID: "i"}); !errors.Is(err, embedded.ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := embedded.Open(embedded.Config{}, nil); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
}

func BenchmarkCommitBatch(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := harness.Open(b, harness.NewLocation(b))
			defer s.Close()
			truthtest.BenchCommit(b, s, size)
		})
	}
}
