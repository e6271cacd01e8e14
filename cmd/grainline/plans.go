package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
)

// runAdminPlans lists the decomposition plan versions this binary knows with
// the orders pinned to each, read from the order snapshots in the truth store
// (the truth, not a read model): running orders are those not yet completed,
// failed, partial or cancelled. Versions orders pinned that the catalog no
// longer knows are listed too, marked "unknown".
func runAdminPlans(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin plans", stderr)
	dsn := fs.String("postgres", "", "PostgreSQL DSN of the truth store")
	dataDir := fs.String("data-dir", "", "data folder of a stopped dev node: the embedded store in DIR/truth")
	tenant := fs.String("tenant", "", "count only this tenant's orders (default: every tenant)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*dsn == "") == (*dataDir == "") {
		fmt.Fprintln(stderr, "grainline admin plans: exactly one of -postgres or -data-dir is required")
		fmt.Fprintln(stderr, adminUsage)
		return errUsage
	}
	log := slog.New(slog.DiscardHandler)
	var lister truth.SnapshotLister
	if *dsn != "" {
		s, err := postgres.Open(ctx, postgres.Config{DSN: *dsn, MaxConns: 2}, log)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.CheckSchema(ctx); err != nil {
			return err
		}
		lister = s
	} else {
		s, err := embedded.Open(embedded.Config{Dir: filepath.Join(*dataDir, "truth")}, log)
		if err != nil {
			return err
		}
		defer s.Close()
		lister = s
	}
	counts, err := countPlans(ctx, lister, *tenant)
	if err != nil {
		return err
	}
	return writePlans(stdout, plan.Builtin(), counts)
}

// planCount counts the orders pinned to one plan version.
type planCount struct{ running, total int }

// countPlans counts order snapshots by pinned plan version.
func countPlans(ctx context.Context, l truth.SnapshotLister, tenant string) (map[int]planCount, error) {
	counts := map[int]planCount{}
	err := l.Snapshots(ctx, string(grains.KindOrder), func(snap truth.Snapshot) error {
		if tenant != "" && snap.Key.Tenant != tenant {
			return nil
		}
		var st struct {
			PlanVersion int          `json:"planVersion"`
			Status      order.Status `json:"status"`
		}
		if err := json.Unmarshal(snap.State, &st); err != nil {
			return fmt.Errorf("admin plans: order %s/%s: %w", snap.Key.Tenant, snap.Key.ID, err)
		}
		c := counts[st.PlanVersion]
		c.total++
		if running(st.Status) {
			c.running++
		}
		counts[st.PlanVersion] = c
		return nil
	})
	return counts, err
}

// running reports whether an order in status s has not finished.
func running(s order.Status) bool {
	switch s {
	case order.StatusCompleted, order.StatusFailed, order.StatusPartial, order.StatusCancelled:
		return false
	}
	return true
}

// writePlans prints one row per known version, then one per unknown version
// some order pinned.
func writePlans(w io.Writer, c plan.Catalog, counts map[int]planCount) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDEFAULT\tRUNNING\tTOTAL\tDESCRIPTION")
	known := map[int]bool{}
	for _, v := range c.Versions() {
		known[v] = true
		p, _ := c.Plan(v)
		def := ""
		if v == c.Default {
			def = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\n", v, def, counts[v].running, counts[v].total, p.Description)
	}
	var unknown []int
	for v := range counts {
		if !known[v] {
			unknown = append(unknown, v)
		}
	}
	sort.Ints(unknown)
	for _, v := range unknown {
		fmt.Fprintf(tw, "%d\t\t%d\t%d\tunknown to this binary\n", v, counts[v].running, counts[v].total)
	}
	return tw.Flush()
}
