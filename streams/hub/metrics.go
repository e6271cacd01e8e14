package hub

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counts are the processor's delivery counts since it was built.
type counts struct {
	delivered, retried, rejected, exhausted, dropped atomic.Int64
	queued                                           atomic.Int64 // jobs waiting or in delivery
}

// Register adds the processor's metrics to reg:
// grainline_hub_deliveries_total{outcome} (delivered, retried, rejected,
// exhausted, dropped) and grainline_hub_queued (events waiting for, or in,
// delivery in this process).
func (p *Processor) Register(reg prometheus.Registerer) error {
	outcome := func(name string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "grainline_hub_deliveries_total",
			Help:        "Webhook delivery outcomes of the event hub: delivered events, failed attempts retried, events given up (rejected, exhausted, dropped).",
			ConstLabels: prometheus.Labels{"outcome": name},
		}, func() float64 { return float64(v.Load()) })
	}
	cs := []prometheus.Collector{
		outcome("delivered", &p.counts.delivered),
		outcome("retried", &p.counts.retried),
		outcome("rejected", &p.counts.rejected),
		outcome("exhausted", &p.counts.exhausted),
		outcome("dropped", &p.counts.dropped),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "grainline_hub_queued",
			Help: "Events waiting for, or in, webhook delivery in this process, summed over subscribers.",
		}, func() float64 { return float64(p.counts.queued.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
