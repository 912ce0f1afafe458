// Package status keeps what the status page and /api/v1/status show
// about recent work: the last frame and its result, recent results,
// latency percentiles per stage, throughput and error counts. A Recorder
// is a pipeline sink; it holds bounded rings only, so its memory is fixed.
package status

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
)

// Sizes of the rings.
const (
	recentResults = 20
	latencyWindow = 1000
	recentErrors  = 20
)

// Recorder records pipeline events. It is safe for concurrent use.
type Recorder struct {
	now func() time.Time

	mu        sync.Mutex
	last      edge.Result
	lastFrame []byte
	lastType  string
	recent    ring[edge.Result]
	errors    ring[edge.Rejection]
	stages    [edge.NumStages]ring[float64] // ms, in the order of edge.StageNames
	perSecond rateCounter                   // results per second over the last rateWindow
	counts    Counts
}

// Counts are totals since start.
type Counts struct {
	Classified uint64 `json:"classified"`
	Rejected   uint64 `json:"rejected"`
	Failed     uint64 `json:"failed"`
}

// NewRecorder returns an empty Recorder; now may be nil (time.Now).
func NewRecorder(now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	r := &Recorder{now: now, recent: newRing[edge.Result](recentResults), errors: newRing[edge.Rejection](recentErrors)}
	for i := range r.stages {
		r.stages[i] = newRing[float64](latencyWindow)
	}
	return r
}

// Publish implements pipeline.Sink.
func (r *Recorder) Publish(e pipeline.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Err != nil {
		if isBadImage(e.Err) {
			r.counts.Rejected++
		} else {
			r.counts.Failed++
		}
		r.errors.add(e.Rejection())
		return
	}
	r.counts.Classified++
	r.last = e.Result
	// The frame's bytes belong to the pipeline's caller; they are not
	// modified after publishing, so keeping the slice is safe.
	r.lastFrame, r.lastType = e.Frame.Data, sniff(e.Frame.Data)
	r.recent.add(e.Result)
	for i, d := range e.Result.Timings.Stages() {
		r.stages[i].add(d.Ms())
	}
	r.perSecond.add(r.now())
}

// LastFrame returns the last classified frame and its content type.
func (r *Recorder) LastFrame() ([]byte, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastFrame, r.lastType
}

// Latency is a stage's latency percentiles in milliseconds.
type Latency struct {
	Stage string  `json:"stage"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
}

// Snapshot is a consistent copy of what the Recorder holds.
type Snapshot struct {
	Last    *edge.Result     `json:"last,omitempty"`
	Recent  []edge.Result    `json:"recent"`
	Errors  []edge.Rejection `json:"recent_errors"`
	Latency []Latency        `json:"latency_ms"`
	FPS     float64          `json:"fps"`
	Counts  Counts           `json:"counts"`
}

// Snapshot copies the current state; recent items come newest first.
// Only the copying holds the lock: sorting for the percentiles happens
// after, so a status request does not hold up publishing.
func (r *Recorder) Snapshot() Snapshot {
	var stages [edge.NumStages][]float64
	r.mu.Lock()
	s := Snapshot{Recent: r.recent.newestFirst(), Errors: r.errors.newestFirst(), Counts: r.counts}
	if r.counts.Classified > 0 {
		last := r.last
		s.Last = &last
	}
	for i := range stages {
		stages[i] = r.stages[i].newestFirst()
	}
	s.FPS = r.perSecond.rate(r.now())
	r.mu.Unlock()

	for i, name := range edge.StageNames() {
		v := stages[i]
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		s.Latency = append(s.Latency, Latency{Stage: name, P50: pct(v, 50), P95: pct(v, 95), P99: pct(v, 99)})
	}
	return s
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []float64, p int) float64 {
	i := (p*len(sorted) + 99) / 100
	return sorted[max(i-1, 0)]
}

// The results-per-second figure averages over rateWindow, counted in
// rateTick buckets: fixed memory whatever the rate, exact to a tick.
const (
	rateWindow = 10 * time.Second
	rateTick   = 100 * time.Millisecond
	rateTicks  = int64(rateWindow / rateTick)
)

// rateCounter counts events per tick for the last rateWindow.
type rateCounter struct {
	buckets [rateTicks]struct {
		tick int64 // the tick (Unix time / rateTick) the count belongs to
		n    uint64
	}
}

func (c *rateCounter) add(t time.Time) {
	tick := t.UnixNano() / int64(rateTick)
	b := &c.buckets[tick%rateTicks]
	if b.tick != tick {
		b.tick, b.n = tick, 0
	}
	b.n++
}

// rate is the events per second over the rateWindow up to now.
func (c *rateCounter) rate(now time.Time) float64 {
	tick := now.UnixNano() / int64(rateTick)
	var n uint64
	for _, b := range c.buckets {
		if age := tick - b.tick; age >= 0 && age < rateTicks {
			n += b.n
		}
	}
	return float64(n) / rateWindow.Seconds()
}

func sniff(b []byte) string {
	switch {
	case len(b) > 3 && b[0] == 0xff && b[1] == 0xd8:
		return "image/jpeg"
	case len(b) > 8 && string(b[1:4]) == "PNG":
		return "image/png"
	case len(b) > 6 && string(b[:3]) == "GIF":
		return "image/gif"
	case len(b) > 2 && string(b[:2]) == "BM":
		return "image/bmp"
	case len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image/webp"
	}
	return "application/octet-stream"
}

// ring is a fixed-size ring buffer.
type ring[T any] struct {
	items []T
	next  int
	full  bool
}

func newRing[T any](n int) ring[T] { return ring[T]{items: make([]T, n)} }

func (r *ring[T]) add(v T) {
	r.items[r.next] = v
	r.next = (r.next + 1) % len(r.items)
	if r.next == 0 {
		r.full = true
	}
}

func (r *ring[T]) newestFirst() []T {
	n := r.next
	if r.full {
		n = len(r.items)
	}
	out := make([]T, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.items[(r.next-i+len(r.items))%len(r.items)])
	}
	return out
}

func isBadImage(err error) bool { return errors.Is(err, classify.ErrBadImage) }
