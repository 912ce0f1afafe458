package mqtt

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Topic kinds, the "topic_kind" label of edgeinfer_mqtt_published_total.
const (
	kindPredictions  = "predictions"
	kindErrors       = "errors"
	kindState        = "state"
	kindAvailability = "availability"
)

// Outcomes of a classify request, the "outcome" label of
// edgeinfer_mqtt_requests_total.
const (
	outcomeClassified = "classified" // a prediction was published
	outcomeFailed     = "failed"     // the classifier returned an error
	outcomeRejected   = "rejected"   // refused before the classifier: no request id, too large, overloaded, shutting down
)

type metrics struct {
	connected  prometheus.Gauge
	published  *prometheus.CounterVec
	dropped    prometheus.Counter
	reconnects prometheus.Counter
	depth      prometheus.Gauge
	requests   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgeinfer_mqtt_connected",
			Help: "1 while connected to the MQTT broker.",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeinfer_mqtt_published_total",
			Help: "Messages the broker acknowledged (or, at QoS 0, that were written), by topic kind.",
		}, []string{"topic_kind"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgeinfer_mqtt_dropped_total",
			Help: "Predictions and errors dropped because the buffer was full (oldest first) or left over at shutdown.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgeinfer_mqtt_reconnects_total",
			Help: "Connections to the broker after the first one.",
		}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgeinfer_mqtt_buffer_depth",
			Help: "Predictions and errors waiting to be published.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeinfer_mqtt_requests_total",
			Help: "Classify requests received over MQTT, by outcome (classified, failed, rejected).",
		}, []string{"outcome"}),
	}
	for _, k := range []string{kindPredictions, kindErrors, kindState, kindAvailability} {
		m.published.WithLabelValues(k)
	}
	for _, o := range []string{outcomeClassified, outcomeFailed, outcomeRejected} {
		m.requests.WithLabelValues(o)
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.connected, m.published, m.dropped, m.reconnects, m.depth, m.requests} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mqtt: metrics: %w", err)
	}
	return m, nil
}
