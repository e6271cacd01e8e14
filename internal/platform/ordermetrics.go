package platform

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

// orderMetrics counts order journeys from the events this node commits
// (actors.Deps.Committed): once per commit, so a replayed command or a
// timer fired twice is not counted again.
type orderMetrics struct {
	jeopardy *prometheus.CounterVec
}

func newOrderMetrics() *orderMetrics {
	m := &orderMetrics{jeopardy: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grainline_order_jeopardy_alerts_total",
		Help: "Jeopardy alerts raised by orders on this node, by jeopardy type: hazard (committed date at risk), critical (missed).",
	}, []string{"jeopardy_type"})}
	for _, typ := range []order.JeopardyType{order.JeopardyHazard, order.JeopardyCritical} {
		m.jeopardy.WithLabelValues(string(typ)) // present from the start, at 0
	}
	return m
}

// committed observes the events of one durable commit.
func (m *orderMetrics) committed(_ truth.Key, events []grains.Event) {
	for _, ev := range events {
		if j, ok := ev.(order.JeopardyRaised); ok {
			m.jeopardy.WithLabelValues(string(j.JeopardyAlert.JeopardyType)).Inc()
		}
	}
}

// collectors returns the metrics to register.
func (m *orderMetrics) collectors() []prometheus.Collector { return []prometheus.Collector{m.jeopardy} }
