package httpapi

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/grainline/grainline/gateway"
	"github.com/grainline/grainline/gateway/problem"
)

type openAPIDoc struct {
	OpenAPI string                    `yaml:"openapi"`
	Paths   map[string]map[string]any `yaml:"paths"`
	Comps   struct {
		Responses       map[string]any `yaml:"responses"`
		SecuritySchemes map[string]any `yaml:"securitySchemes"`
		Schemas         struct {
			Problem struct {
				Properties struct {
					Code struct {
						Enum []string `yaml:"enum"`
					} `yaml:"code"`
				} `yaml:"properties"`
			} `yaml:"Problem"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}

func loadSpec(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := yaml.Unmarshal(gateway.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q, want 3.1.x", doc.OpenAPI)
	}
	return doc
}

// The document describes exactly the routes the handler registers.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadSpec(t)
	var documented, registered []string
	for path, item := range doc.Paths {
		for method := range item {
			if httpMethods[method] {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	for _, rt := range routes() {
		registered = append(registered, rt.Method+" "+rt.Path)
	}
	sort.Strings(documented)
	sort.Strings(registered)
	if strings.Join(documented, "\n") != strings.Join(registered, "\n") {
		t.Fatalf("openapi.yaml and the route table differ\ndocumented:\n%s\nregistered:\n%s",
			strings.Join(documented, "\n"), strings.Join(registered, "\n"))
	}
	// Public routes opt out of the bearer requirement; the others inherit it.
	if _, ok := doc.Comps.SecuritySchemes["bearer"]; !ok {
		t.Fatal("no bearer security scheme")
	}
	for _, rt := range routes() {
		op, _ := doc.Paths[rt.Path][strings.ToLower(rt.Method)].(map[string]any)
		sec, has := op["security"]
		public := has && len(sec.([]any)) == 0
		if public != rt.Public {
			t.Errorf("%s %s: documented public=%v, registered public=%v", rt.Method, rt.Path, public, rt.Public)
		}
	}
}

// Every documented error status is one the catalogue produces, and every
// code is documented.
func TestOpenAPIErrorsMatchCatalogue(t *testing.T) {
	doc := loadSpec(t)
	statuses := map[int]bool{}
	codes := map[string]bool{}
	for _, e := range problem.Catalogue() {
		statuses[e.Status] = true
		codes[string(e.Code)] = true
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !httpMethods[method] {
				continue
			}
			op, _ := raw.(map[string]any)
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s %s documents no responses", method, path)
			}
			for status := range responses {
				n, err := strconv.Atoi(status)
				if err != nil {
					t.Errorf("%s %s: response %q is not a status", method, path, status)
					continue
				}
				if n >= 400 && !statuses[n] {
					t.Errorf("%s %s documents %d, which no catalogue code produces", method, path, n)
				}
			}
		}
	}
	for name := range doc.Comps.Responses {
		if n, err := strconv.Atoi(strings.TrimPrefix(name, "Problem")); err == nil && !statuses[n] {
			t.Errorf("response %s is not in the catalogue", name)
		}
	}
	enum := doc.Comps.Schemas.Problem.Properties.Code.Enum
	if len(enum) != len(codes) {
		t.Errorf("Problem.code enum has %d codes, catalogue %d", len(enum), len(codes))
	}
	for _, c := range enum {
		if !codes[c] {
			t.Errorf("documented code %q is not in the catalogue", c)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", "/openapi.yaml", "", "Authorization: ")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/yaml" || w.Body.String() != string(gateway.OpenAPI()) {
		t.Fatalf("openapi.yaml: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}
