package plan_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

func TestBuiltinIsValid(t *testing.T) {
	c := plan.Builtin()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Default != plan.DefaultVersion || plan.DefaultVersion != plan.V2 {
		t.Fatalf("default = %d (const %d), want version 2", c.Default, plan.DefaultVersion)
	}
	if got := c.Versions(); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Fatalf("versions = %v", got)
	}
	// Builtin hands out fresh values: changing one does not change the next.
	c.Plans[0].Order[0].Type = "changed"
	if plan.Builtin().Plans[0].Order[0].Type != plan.TypeProvision {
		t.Fatal("Builtin shares its plans between calls")
	}
}

func TestPlanValidate(t *testing.T) {
	spec := func(typ string, deps ...string) plan.TaskSpec { return plan.TaskSpec{Type: typ, DependsOn: deps} }
	tests := []struct {
		name string
		p    plan.Plan
		want string // "" means valid; else a part of the message
	}{
		{"order task only", plan.Plan{Version: 1, Order: []plan.TaskSpec{spec("provision")}}, ""},
		{"chain", plan.Plan{Version: 2, Default: []plan.TaskSpec{spec("b", "a"), spec("a")}}, ""},
		{"order task on a line type", plan.Plan{Version: 2, Default: []plan.TaskSpec{spec("a")}, Order: []plan.TaskSpec{spec("n", "a")}}, ""},
		{"order task on an offering's type", plan.Plan{Version: 2, Offerings: map[string][]plan.TaskSpec{"x": {spec("a")}}, Order: []plan.TaskSpec{spec("n", "a")}}, ""},
		{"zero version", plan.Plan{Order: []plan.TaskSpec{spec("a")}}, "not positive"},
		{"negative version", plan.Plan{Version: -1, Order: []plan.TaskSpec{spec("a")}}, "not positive"},
		{"no tasks", plan.Plan{Version: 1}, "no task"},
		{"only empty lists", plan.Plan{Version: 1, Offerings: map[string][]plan.TaskSpec{"x": nil}}, "no task"},
		{"empty type", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("")}}, "no type"},
		{"duplicate type", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("a"), spec("a")}}, `"a" twice`},
		{"unknown dependency", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("a", "zz")}}, `unknown task "zz"`},
		{"line task on an order type", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("a", "n")}, Order: []plan.TaskSpec{spec("n")}}, `unknown task "n"`},
		{"line task on another offering's type", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("a")}, Offerings: map[string][]plan.TaskSpec{"x": {spec("b", "a")}}}, `unknown task "a"`},
		{"self dependency", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("a", "a")}}, "itself"},
		{"two-cycle", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("a", "b"), spec("b", "a")}}, "cycle"},
		{"three-cycle behind a root", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("r"), spec("a", "r", "c"), spec("b", "a"), spec("c", "b")}}, `["a" "b" "c"]`},
		{"cycle among order tasks", plan.Plan{Version: 1, Order: []plan.TaskSpec{spec("a", "b"), spec("b", "a")}}, "cycle"},
		{"cycle in an offering", plan.Plan{Version: 1, Default: []plan.TaskSpec{spec("a")}, Offerings: map[string][]plan.TaskSpec{"x": {spec("a", "b"), spec("b", "a")}}}, `offering "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, plan.ErrInvalidPlan) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidPlan mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCatalogValidate(t *testing.T) {
	v1 := plan.Builtin().Plans[0]
	bad := plan.Plan{Version: 3}
	tests := []struct {
		name string
		c    plan.Catalog
		want error
	}{
		{"builtin", plan.Builtin(), nil},
		{"duplicate version", plan.Catalog{Default: 1, Plans: []plan.Plan{v1, v1}}, plan.ErrInvalidPlan},
		{"default unknown", plan.Catalog{Default: 2, Plans: []plan.Plan{v1}}, plan.ErrUnknownVersion},
		{"empty", plan.Catalog{}, plan.ErrUnknownVersion},
		{"an invalid plan", plan.Catalog{Default: 1, Plans: []plan.Plan{v1, bad}}, plan.ErrInvalidPlan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func lines(specs ...string) []grains.Line {
	var out []grains.Line
	for _, s := range specs {
		id, offering, _ := strings.Cut(s, ":")
		out = append(out, grains.Line{LineID: id, OfferingID: offering, Quantity: 1})
	}
	return out
}

// summary renders tasks as "id<-dep,dep" for compact comparison.
func summary(ts []plan.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
		if len(t.DependsOn) > 0 {
			out[i] += "<-" + strings.Join(t.DependsOn, ",")
		}
	}
	return out
}

func TestDecompose(t *testing.T) {
	tests := []struct {
		name    string
		version int
		lines   []grains.Line
		want    []string
	}{
		{"v1 is one order task", 1, lines("1:sdwan-edge-m", "2:dia-1g"), []string{"o-1/provision"}},
		{"v2 one line", 2, lines("1:sdwan-edge-m"), []string{
			"o-1/1/reserveInventory",
			"o-1/1/provision<-o-1/1/reserveInventory",
			"o-1/1/activateBilling<-o-1/1/provision",
			"o-1/notify<-o-1/1/activateBilling",
		}},
		{"v2 two lines, one a licence without inventory", 2, lines("1:sdwan-edge-m", "2:sdwan-license"), []string{
			"o-1/1/reserveInventory",
			"o-1/1/provision<-o-1/1/reserveInventory",
			"o-1/1/activateBilling<-o-1/1/provision",
			"o-1/2/provision",
			"o-1/2/activateBilling<-o-1/2/provision",
			"o-1/notify<-o-1/1/activateBilling,o-1/2/activateBilling",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := plan.Decompose("o-1", tt.version, tt.lines)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(summary(got), tt.want) {
				t.Fatalf("tasks\n%q\nwant\n%q", summary(got), tt.want)
			}
			again, _ := plan.Decompose("o-1", tt.version, tt.lines)
			if !reflect.DeepEqual(got, again) {
				t.Fatal("Decompose is not deterministic")
			}
		})
	}
}

func TestDecomposeAttributes(t *testing.T) {
	got, err := plan.Decompose("o-9", 2, lines("7:dia-1g"))
	if err != nil {
		t.Fatal(err)
	}
	want := []plan.Task{
		{ID: "o-9/7/reserveInventory", Type: "reserveInventory", LineID: "7", Compensation: "releaseReservation"},
		{ID: "o-9/7/provision", Type: "provision", LineID: "7", DependsOn: []string{"o-9/7/reserveInventory"}, Compensation: "deprovision"},
		{ID: "o-9/7/activateBilling", Type: "activateBilling", LineID: "7", DependsOn: []string{"o-9/7/provision"}, PointOfNoReturn: true, Compensation: "deactivateBilling"},
		{ID: "o-9/notify", Type: "notify", DependsOn: []string{"o-9/7/activateBilling"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestDecomposeOrdersTopologically declares tasks out of dependency order and
// checks every task comes after its dependencies, ties in declaration order.
func TestDecomposeOrdersTopologically(t *testing.T) {
	c := plan.Catalog{Default: 5, Plans: []plan.Plan{{Version: 5,
		Default: []plan.TaskSpec{{Type: "c", DependsOn: []string{"b"}}, {Type: "x"}, {Type: "b", DependsOn: []string{"a"}}, {Type: "a"}},
		Order:   []plan.TaskSpec{{Type: "z", DependsOn: []string{"y"}}, {Type: "y", DependsOn: []string{"c", "nowhere-on-lines"}}},
		Offerings: map[string][]plan.TaskSpec{
			"other": {{Type: "nowhere-on-lines"}},
		},
	}}}
	got, err := c.Decompose("o", 5, lines("1:p", "2:p"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"o/1/x", "o/1/a", "o/1/b<-o/1/a", "o/1/c<-o/1/b", "o/2/x", "o/2/a", "o/2/b<-o/2/a", "o/2/c<-o/2/b",
		"o/y<-o/1/c,o/2/c", "o/z<-o/y"}
	if !reflect.DeepEqual(summary(got), want) {
		t.Fatalf("tasks\n%q\nwant\n%q", summary(got), want)
	}
}

func TestDecomposeErrors(t *testing.T) {
	tests := []struct {
		name    string
		orderID string
		version int
		lines   []grains.Line
		want    error
	}{
		{"unknown version", "o-1", 9, lines("1:x"), plan.ErrUnknownVersion},
		{"version zero", "o-1", 0, lines("1:x"), plan.ErrUnknownVersion},
		{"no lines", "o-1", 2, nil, plan.ErrInvalidLines},
		{"no order id", "", 2, lines("1:x"), plan.ErrInvalidLines},
		{"empty line id", "o-1", 2, lines(":x"), plan.ErrInvalidLines},
		{"repeated line id", "o-1", 2, lines("1:x", "1:y"), plan.ErrInvalidLines},
		{"v1 checks lines too", "o-1", 1, lines("1:x", "1:y"), plan.ErrInvalidLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := plan.Decompose(tt.orderID, tt.version, tt.lines); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	invalid := plan.Catalog{Default: 1, Plans: []plan.Plan{{Version: 1, Default: []plan.TaskSpec{{Type: "a", DependsOn: []string{"a"}}}}}}
	if _, err := invalid.Decompose("o-1", 1, lines("1:x")); !errors.Is(err, plan.ErrInvalidPlan) {
		t.Fatalf("invalid plan: err = %v", err)
	}
}

// TestPlanJSONRoundTrip: plans are data; a catalog survives JSON unchanged.
func TestPlanJSONRoundTrip(t *testing.T) {
	c := plan.Builtin()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back plan.Catalog
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, back) {
		t.Fatalf("round trip changed the catalog:\n%+v\n%+v", c, back)
	}
	if !strings.Contains(string(b), `"dependsOn":["reserveInventory"]`) || !strings.Contains(string(b), `"pointOfNoReturn":true`) {
		t.Fatalf("unexpected wire form: %s", b)
	}
}

// TestDecomposeAt: a line of a later generation gets task ids of its own,
// dependencies included, and the order task waits for them; generation 1
// (or none) keeps the ids of Decompose.
func TestDecomposeAt(t *testing.T) {
	lines := []grains.Line{{LineID: "1", OfferingID: "dia-1g", Quantity: 1}, {LineID: "2", OfferingID: "sdwan-license", Quantity: 1}}
	got, err := plan.Builtin().DecomposeAt("o-1", plan.V2, lines, map[string]int{"1": 3, "2": 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][]string{}
	for _, task := range got {
		ids[task.ID] = task.DependsOn
	}
	want := map[string][]string{
		"o-1/1@3/reserveInventory": nil,
		"o-1/1@3/provision":        {"o-1/1@3/reserveInventory"},
		"o-1/1@3/activateBilling":  {"o-1/1@3/provision"},
		"o-1/2/provision":          nil,
		"o-1/2/activateBilling":    {"o-1/2/provision"},
		"o-1/notify":               {"o-1/1@3/activateBilling", "o-1/2/activateBilling"},
	}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("DecomposeAt = %v, want %v", ids, want)
	}
	for _, task := range got {
		if task.ID != "o-1/notify" && task.LineID != "1" && task.LineID != "2" {
			t.Errorf("task %s has line %q, want the line's own id", task.ID, task.LineID)
		}
	}
	plain, _ := plan.Builtin().Decompose("o-1", plan.V2, lines)
	same, _ := plan.Builtin().DecomposeAt("o-1", plan.V2, lines, map[string]int{"1": 1})
	if !reflect.DeepEqual(plain, same) {
		t.Fatalf("generation 1 changed the ids: %v vs %v", plain, same)
	}
	if id := plan.LineTaskIDAt("o-1", "7", 2, "provision"); id != "o-1/7@2/provision" {
		t.Fatalf("LineTaskIDAt = %s", id)
	}
}

func TestCommit(t *testing.T) {
	day := 24 * time.Hour
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	accepted := start.Add(-17 * time.Hour)
	p := plan.Plan{Version: 1, LeadTimeSeconds: 4 * 24 * 3600}
	withMargin := p
	withMargin.JeopardyMarginSeconds = 3600
	tests := []struct {
		name               string
		p                  plan.Plan
		accepted, requests time.Time
		margin             time.Duration
		committed, at      time.Time
	}{
		{"lead time from acceptance, a quarter of the window from the start as margin", p, accepted, time.Time{}, 0, accepted.Add(4 * day), accepted.Add(4*day - (4*day-17*time.Hour)/4)},
		{"the plan's margin", withMargin, accepted, time.Time{}, 0, accepted.Add(4 * day), accepted.Add(4*day - time.Hour)},
		{"the order's margin wins", withMargin, accepted, time.Time{}, 2 * time.Hour, accepted.Add(4 * day), accepted.Add(4*day - 2*time.Hour)},
		{"no acceptance: from the start", p, time.Time{}, time.Time{}, time.Hour, start.Add(4 * day), start.Add(4*day - time.Hour)},
		{"default lead time", plan.Plan{Version: 1}, accepted, time.Time{}, time.Hour, accepted.Add(plan.DefaultLeadTime), accepted.Add(plan.DefaultLeadTime - time.Hour)},
		{"requested date", withMargin, accepted, start.Add(3 * time.Hour), 0, start.Add(3 * time.Hour), start.Add(2 * time.Hour)},
		{"margin beyond the window: at risk at once", withMargin, accepted, start.Add(30 * time.Minute), 0, start.Add(30 * time.Minute), start},
		{"requested in the past", p, accepted, start.Add(-time.Hour), 0, start.Add(-time.Hour), start.Add(-time.Hour)},
		{"kept to the microsecond", p, accepted, start.Add(time.Hour + 1500*time.Nanosecond), time.Minute, start.Add(time.Hour + time.Microsecond), start.Add(59*time.Minute + time.Microsecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Commit(start, tt.accepted, tt.requests, tt.margin)
			if !got.CommittedDate.Equal(tt.committed) || !got.JeopardyAt.Equal(tt.at) {
				t.Fatalf("Commit = %v / %v, want %v / %v", got.CommittedDate, got.JeopardyAt, tt.committed, tt.at)
			}
		})
	}
}

func TestCommitmentValidate(t *testing.T) {
	base := plan.Plan{Version: 1, Order: []plan.TaskSpec{{Type: "a"}}}
	for _, tt := range []struct {
		lead, margin int
		want         string
	}{
		{0, 0, ""}, {3600, 60, ""}, {0, 3600, ""},
		{-1, 0, "negative leadTimeSeconds"}, {0, -1, "negative jeopardyMarginSeconds"}, {3600, 3600, "not shorter"},
	} {
		p := base
		p.LeadTimeSeconds, p.JeopardyMarginSeconds = tt.lead, tt.margin
		err := p.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && (!errors.Is(err, plan.ErrInvalidPlan) || !strings.Contains(err.Error(), tt.want))) {
			t.Errorf("lead %d margin %d: Validate() = %v, want %q", tt.lead, tt.margin, err, tt.want)
		}
	}
}
