package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
)

// Jeopardy drills (ADR 0024): an order whose fulfillment is held raises
// jeopardy alerts from its durable timers, and records milestones as it
// completes.

// newJeopardyOrderID returns a fresh order id for createCommittedOrder.
func newJeopardyOrderID() string { return "o-jeop-" + testenv.RandomSuffix() }

// createCommittedOrder creates plan version 2 order orderID (from
// newJeopardyOrderID) of one dia-1g line at the node, as the intake would,
// committed to complete by requested and at risk margin before; a zero
// requested leaves both to the plan.
func createCommittedOrder(t *testing.T, send call.Sender, orderID string, requested time.Time, margin time.Duration) {
	t.Helper()
	suffix := strings.TrimPrefix(orderID, "o-jeop-")
	quoteID := "q-jeop-" + suffix
	var req *time.Time
	if !requested.IsZero() {
		req = &requested
	}
	sendCreate(t, send, order.Create{QuoteID: quoteID, OrderID: orderID, CustomerID: "c-jeop", Currency: "EUR",
		Lines: []grains.Line{{LineID: "1", OfferingID: "dia-1g", Name: "dia-1g", Quantity: 1,
			UnitOneTime: "100.00", UnitMonthly: "10.00", OneTimeTotal: "100.00", MonthlyTotal: "10.00"}},
		OneTimeTotal: "100.00", MonthlyTotal: "10.00", PriceHash: "jeop", AcceptedBy: "e2e",
		AcceptedAt: time.Now().UTC(), PlanVersion: plan.V2,
		RequestedCompletionDate: req, JeopardyMarginSeconds: int(margin / time.Second)})
}

func alertTypes(s order.State) []order.JeopardyType {
	var out []order.JeopardyType
	for _, a := range s.JeopardyAlerts {
		out = append(out, a.JeopardyType)
	}
	return out
}

func milestoneNames(ms []order.Milestone) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// orderTimers returns the ids of the durable timers the order still has.
func orderTimers(t *testing.T, st truth.Store, orderID string) []string {
	t.Helper()
	ts, ok := st.(truth.TimerStore)
	if !ok {
		t.Fatalf("%T keeps no timers", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	due, err := ts.DueTimers(ctx, time.Now().Add(365*24*time.Hour), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range due {
		if d.Key.Kind == string(grains.KindOrder) && d.Key.ID == orderID {
			out = append(out, d.TimerID)
		}
	}
	return out
}

// metric returns the value of one sample line of the platform's /metrics.
func metric(t *testing.T, e *env, sample string) string {
	t.Helper()
	resp, err := http.Get("http://" + e.p.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// TestDrillJeopardy: an order committed 5 seconds out, at risk 3 seconds
// before, has its provisioning held at the external system. Its durable
// timers raise a hazard alert, then a critical one when the committed date
// passes, each once, visible in GET /v1/orders/{id}, in
// GET /v1/orders/{id}/milestones and over NATS, as OrderJeopardyRaised on
// the order's Kafka topic, and in the jeopardy metric. Released, the order
// completes with its milestones in order. An order that completes before
// its dates leaves no timer behind.
func TestDrillJeopardy(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		sys := newDrillSystems(t)
		e := startPlatform(t, m, platformOpts{systems: sys.adapters()})
		ops := e.api("ops")

		committed := time.Now().Add(5 * time.Second).UTC().Truncate(time.Millisecond)
		orderID := newJeopardyOrderID()
		sys.hold(plan.TypeProvision, orderID)
		createCommittedOrder(t, e.p.Node, orderID, committed, 3*time.Second)
		provision := plan.LineTaskID(orderID, "1", plan.TypeProvision)

		held := awaitOrderState(t, ops, orderID, "in jeopardy twice", func(s order.State) bool { return len(s.JeopardyAlerts) == 2 })
		if !slices.Equal(alertTypes(held), []order.JeopardyType{order.JeopardyHazard, order.JeopardyCritical}) ||
			held.CommittedDate == nil || !held.CommittedDate.Equal(committed) || held.Status != order.StatusInProgress {
			t.Fatalf("held order: status %s, committed %v (want %v), alerts %+v", held.Status, held.CommittedDate, committed, held.JeopardyAlerts)
		}
		for _, a := range held.JeopardyAlerts {
			if len(a.Items) != 1 || a.Items[0].ID != "1" || !slices.Equal(a.Tasks, []string{provision}) || a.AlertDate.Before(*held.JeopardyAt) {
				t.Fatalf("alert %+v: want item 1 and task %s at risk, raised after %v", a, provision, held.JeopardyAt)
			}
		}
		if crit := held.JeopardyAlerts[1]; crit.Name != order.AlertCommittedDateMissed || crit.AlertDate.Before(committed) {
			t.Fatalf("critical alert %+v raised before the committed date %v", crit, committed)
		}
		trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: orderID})
		if n := countActions(trail, order.CmdCheckJeopardy); n != 2 {
			t.Fatalf("audit trail has %d checkJeopardy records, want the two timers' ones: %+v", n, trail)
		}

		// The alerts are order events on Kafka, like the others.
		kc := e.kafkaClient()
		var raised []order.JeopardyRaised
		eventually(t, journeyTimeout, func() (bool, string) {
			raised = nil
			for _, msg := range readTopic(t, kc, e.topic(platform.TopicOrderEvents), orderID) {
				if header(msg, kafka.HeaderEventType) != order.EvJeopardyRaised {
					continue
				}
				var env kafka.Envelope
				if err := json.Unmarshal(msg.Value, &env); err != nil {
					t.Fatalf("envelope: %v", err)
				}
				var ev order.JeopardyRaised
				if err := json.Unmarshal(env.Payload, &ev); err != nil {
					t.Fatalf("payload: %v", err)
				}
				raised = append(raised, ev)
			}
			return len(raised) == 2, fmt.Sprintf("%d OrderJeopardyRaised on Kafka", len(raised))
		})
		if raised[0].JeopardyAlert.ID != "ja-1" || raised[1].JeopardyAlert.JeopardyType != order.JeopardyCritical || raised[1].OrderID != orderID {
			t.Fatalf("Kafka events %+v", raised)
		}
		if h, c := metric(t, e, `grainline_order_jeopardy_alerts_total{jeopardy_type="hazard"}`),
			metric(t, e, `grainline_order_jeopardy_alerts_total{jeopardy_type="critical"}`); h != "1" || c != "1" {
			t.Fatalf("jeopardy metric: hazard %q, critical %q, want 1 and 1", h, c)
		}

		sys.release(plan.TypeProvision, orderID)
		done := awaitOrderState(t, ops, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		want := []string{order.MilestoneAcknowledged, "reserved", "provisioned", "billingActivated", order.MilestoneItemCompleted, "notified", "completed"}
		if got := milestoneNames(done.Milestones); !slices.Equal(got, want) {
			t.Fatalf("milestones %v, want %v", got, want)
		}
		for i, ms := range done.Milestones {
			if i > 0 && ms.MilestoneDate.Before(done.Milestones[i-1].MilestoneDate) || ms.Status != order.MilestoneReached {
				t.Fatalf("milestone %d %+v out of order or not reached: %+v", i, ms, done.Milestones)
			}
		}
		if len(done.JeopardyAlerts) != 2 {
			t.Fatalf("alerts after completion %+v", done.JeopardyAlerts)
		}

		// The milestones read, over HTTP and NATS.
		var ml struct {
			OrderID        string                `json:"orderId"`
			Status         order.Status          `json:"status"`
			CommittedDate  time.Time             `json:"committedDate"`
			Items          []order.Milestone     `json:"items"`
			JeopardyAlerts []order.JeopardyAlert `json:"jeopardyAlerts"`
		}
		ops.call(t, http.MethodGet, "/v1/orders/"+orderID+"/milestones", nil).expect(t, "milestones", 200).decode(t, &ml)
		if ml.OrderID != orderID || ml.Status != order.StatusCompleted || !ml.CommittedDate.Equal(committed) ||
			!slices.Equal(milestoneNames(ml.Items), want) || len(ml.JeopardyAlerts) != 2 {
			t.Fatalf("GET milestones %+v", ml)
		}
		nd := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, e.token(platform.DemoTenant, "ops"))
		ml.Items = nil
		nd.do(t, grains.KindOrder, dispatchMilestones, orderID, nil, opts{}).expect(t, "NATS order.milestones", 200).decode(t, &ml)
		if !slices.Equal(milestoneNames(ml.Items), want) {
			t.Fatalf("NATS milestones %+v", ml.Items)
		}

		// An order that completes in time raises nothing and cancels its
		// jeopardy timers with its stuck timer.
		calm := newJeopardyOrderID()
		sys.hold(plan.TypeNotify, calm)
		createCommittedOrder(t, e.p.Node, calm, time.Time{}, 0)
		if got := orderTimers(t, e.p.Store, calm); !slices.Contains(got, order.TimerJeopardy) || !slices.Contains(got, order.TimerOverdue) {
			t.Fatalf("a new order's timers %v: want jeopardy and overdue", got)
		}
		sys.release(plan.TypeNotify, calm)
		fine := awaitOrderState(t, ops, calm, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		if len(fine.JeopardyAlerts) != 0 || fine.CommittedDate == nil {
			t.Fatalf("order completed in time: committed %v, alerts %+v", fine.CommittedDate, fine.JeopardyAlerts)
		}
		if got := orderTimers(t, e.p.Store, calm); len(got) != 0 {
			t.Fatalf("a completed order keeps timers %v", got)
		}
	})
}

// dispatchMilestones is the order read of milestones over NATS.
const dispatchMilestones = "milestones"

// TestJeopardyAcrossRestart: the platform stops before an order's
// jeopardy timers are due and starts again after both are: the timers were
// committed with the order and fire on start, each raising its alert once.
// The platform runs without streams, so the order's tasks stay requested.
func TestJeopardyAcrossRestart(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		var (
			start func() *platform.Platform
			stop  func(p *platform.Platform)
		)
		switch m {
		case embedded:
			dir := t.TempDir()
			start = func() *platform.Platform {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				p, err := platform.Start(ctx, platform.Config{DataDir: dir, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
					NoStreams: true, Log: testLogger(t)})
				if err != nil {
					t.Fatalf("start platform: %v", err)
				}
				return p
			}
			stop = func(p *platform.Platform) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := p.Close(ctx); err != nil {
					t.Fatalf("close platform: %v", err)
				}
			}
		case real:
			var first *env
			start = func() *platform.Platform {
				e := startPlatform(t, real, platformOpts{noStreams: true, after: first})
				first = e
				return e.p
			}
			stop = func(p *platform.Platform) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := p.Close(ctx); err != nil {
					t.Fatalf("close platform: %v", err)
				}
			}
		}

		p := start()
		committed := time.Now().Add(12 * time.Second).UTC()
		orderID := newJeopardyOrderID()
		createCommittedOrder(t, p.Node, orderID, committed, 4*time.Second)
		stop(p)
		if atRisk := committed.Add(-4 * time.Second); time.Now().After(atRisk) {
			t.Fatalf("the platform closed after the order was at risk (%v); the test proves nothing", atRisk)
		}
		time.Sleep(time.Until(committed) + 200*time.Millisecond) // no platform runs: nothing to poll

		p = start()
		defer stop(p)
		tok, err := p.Token(platform.DemoTenant, "e2e-demo", []string{"ops"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		a := api{base: "http://" + p.HTTPAddr, token: tok, hc: &http.Client{Timeout: 30 * time.Second}}
		s := awaitOrderState(t, a, orderID, "alerted twice", func(s order.State) bool { return len(s.JeopardyAlerts) == 2 })
		if !slices.Equal(alertTypes(s), []order.JeopardyType{order.JeopardyHazard, order.JeopardyCritical}) || s.Status != order.StatusInProgress {
			t.Fatalf("after restart: status %s, alerts %+v", s.Status, s.JeopardyAlerts)
		}
		for _, al := range s.JeopardyAlerts {
			if al.AlertDate.Before(committed) {
				t.Fatalf("alert %+v raised before the restart", al)
			}
		}
	})
}
