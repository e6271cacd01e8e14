package grains_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDomainIsPure fails when non-test code under grains/ imports anything
// but the standard library's pure packages, the decimal library and other
// grains packages, or reads the clock or randomness.
func TestDomainIsPure(t *testing.T) {
	forbiddenStd := []string{"os", "net", "io/ioutil", "math/rand", "crypto/rand", "syscall", "log", "database/sql", "os/exec", "runtime", "unsafe", "plugin"}
	// cel-go evaluates approval rules: pure, no I/O, no clock.
	allowedExt := []string{"github.com/shopspring/decimal", "github.com/grainline/grainline/grains", "github.com/google/cel-go"}
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			strings.Contains(filepath.ToSlash(path), "internal/scripttest/") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			first := strings.Split(p, "/")[0]
			if strings.Contains(first, ".") {
				ok := false
				for _, a := range allowedExt {
					ok = ok || p == a || strings.HasPrefix(p, a+"/")
				}
				if !ok {
					t.Errorf("%s imports %s: the domain may not depend on infrastructure", path, p)
				}
				continue
			}
			for _, bad := range forbiddenStd {
				if p == bad || strings.HasPrefix(p, bad+"/") {
					t.Errorf("%s imports %s: the domain does no I/O", path, p)
				}
			}
		}
		for _, call := range []string{"time.Now(", "time.Since(", "time.Until(", "time.Sleep(", "time.After("} {
			if strings.Contains(string(src), call) {
				t.Errorf("%s calls %s: time comes from Env.Now", path, call)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d files; is the walk rooted at grains/?", checked)
	}
}
