package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

// Outcomes of a frame, the "outcome" label of edgeinfer_frames_total.
const (
	outcomeClassified = "classified"
	outcomeRejected   = "rejected"   // the image was bad
	outcomeError      = "error"      // the engine failed
	outcomeDropped    = "dropped"    // replaced by a newer frame before it was taken
	outcomeOverloaded = "overloaded" // a request refused for lack of queue space
)

// Metrics are the pipeline's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	frames *prometheus.CounterVec
	// stages are resolved once, in the order of edge.StageNames, so that
	// a frame costs no label lookup or allocation here.
	stages   [edge.NumStages]prometheus.Observer
	inflight prometheus.Gauge
	last     prometheus.Gauge
}

// NewMetrics registers the pipeline's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeinfer_frames_total",
			Help: "Frames by source and outcome (classified, rejected, error, dropped, overloaded).",
		}, []string{"source", "kind", "outcome"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgeinfer_classifications_in_progress",
			Help: "Classifications running or waiting for an interpreter.",
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgeinfer_last_result_timestamp_seconds",
			Help: "Unix time of the last classified image.",
		}),
	}
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edgeinfer_stage_duration_seconds",
		Help:    "Time spent per classified image, by stage (decode, preprocess, inference, postprocess, total).",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
	}, []string{"stage"})
	for i, name := range edge.StageNames() {
		m.stages[i] = stages.WithLabelValues(name)
	}
	reg.MustRegister(m.frames, stages, m.inflight, m.last)
	return m
}

func (m *Metrics) frame(f source.Frame, outcome string) {
	if m == nil {
		return
	}
	m.frames.WithLabelValues(f.Source, f.Kind, outcome).Inc()
}

func (m *Metrics) result(r edge.Result) {
	if m == nil {
		return
	}
	for i, d := range r.Timings.Stages() {
		m.stages[i].Observe(d.Duration().Seconds())
	}
	m.last.SetToCurrentTime()
}

func (m *Metrics) setInflight(n int) {
	if m == nil {
		return
	}
	m.inflight.Set(float64(n))
}

// SourceCollector exports the state of sources at scrape time:
// edgeinfer_source_up, edgeinfer_source_restarts_total and
// edgeinfer_source_frames_total.
type SourceCollector struct {
	states                 func() []source.State
	up, restarts, produced *prometheus.Desc
}

// NewSourceCollector returns a collector over the states that states
// returns.
func NewSourceCollector(states func() []source.State) *SourceCollector {
	return &SourceCollector{
		states: states,
		up: prometheus.NewDesc("edgeinfer_source_up",
			"1 if the source is running or idle, 0 if starting, backing off or stopped.", []string{"source", "kind", "state"}, nil),
		restarts: prometheus.NewDesc("edgeinfer_source_restarts_total",
			"Restarts of the source's capture command or connection.", []string{"source", "kind"}, nil),
		produced: prometheus.NewDesc("edgeinfer_source_frames_total",
			"Frames the source produced, taken or dropped.", []string{"source", "kind"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *SourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.restarts
	ch <- c.produced
}

// Collect implements prometheus.Collector.
func (c *SourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.states() {
		up := 0.0
		if s.Condition == source.Running || s.Condition == source.Idle {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, s.Name, s.Kind, string(s.Condition))
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(s.Restarts), s.Name, s.Kind)
		ch <- prometheus.MustNewConstMetric(c.produced, prometheus.CounterValue, float64(s.Frames), s.Name, s.Kind)
	}
}
