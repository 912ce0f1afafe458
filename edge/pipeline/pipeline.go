// Package pipeline moves frames from sources through the classifier to the
// sinks.
//
// Live sources (cameras, snapshots, replays) are latest-frame-wins: each
// has a one-frame mailbox, and a frame not yet taken when the next arrives
// is dropped and counted, so a slow model never builds a backlog. Sources
// that must not lose frames (folders) block in Submit until their frame is
// done. Requests (HTTP, MQTT) are admitted up to a bound and otherwise
// refused with ErrOverloaded, which the HTTP API turns into 429. The
// classifier's own interpreter pool is what runs work in parallel.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

// ErrOverloaded refuses a request because the queue is full.
var ErrOverloaded = errors.New("overloaded: too many requests in progress")

// Classifier classifies one encoded image.
type Classifier interface {
	Classify(ctx context.Context, data []byte) (edge.Result, error)
}

// Source produces frames until its context ends.
type Source interface {
	Name() string
	Kind() string
	State() source.State
	Run(ctx context.Context, out source.Output) error
}

// Event is what sinks receive for every frame the pipeline finished: a
// result, or Err with the frame it could not classify.
type Event struct {
	Result edge.Result
	Frame  source.Frame
	Err    error
}

// Rejection returns the event's failure in the errors-topic shape.
func (e Event) Rejection() edge.Rejection {
	return edge.Rejection{RequestID: e.Frame.RequestID, Source: e.Frame.Kind, Error: e.Err.Error(), At: e.Frame.CapturedAt}
}

// Sink receives events. Publish is called from many goroutines and must
// not block for long: a sink that does I/O hands events to its own buffer.
type Sink interface {
	Publish(Event)
}

// Config configures a Pipeline.
type Config struct {
	DeviceID string
	// MaxQueue bounds requests admitted at once (default 16).
	MaxQueue int
	// StallTimeout is how long work may wait or run before Healthy says
	// the pipeline stalled (default 30s).
	StallTimeout time.Duration
	// Workers take frames from each live source at once (default 1). With
	// as many workers as interpreters, one worker decodes its next frame
	// while the others infer; with one more, decoding also overlaps when
	// every interpreter is busy. Results are published in frame order
	// either way.
	Workers int
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// Pipeline connects sources, a classifier and sinks.
type Pipeline struct {
	cfg        Config
	classifier Classifier
	sinks      []Sink
	log        *slog.Logger
	metrics    *Metrics
	admit      chan struct{}

	mu      sync.Mutex
	sources []Source
	boxes   map[string]*mailbox
	running map[uint64]time.Time // start of each classification in progress
	nextRun uint64
	done    time.Time // end of the last classification
	started bool
}

// New returns a pipeline; metrics may be nil.
func New(cfg Config, c Classifier, sinks []Sink, metrics *Metrics, log *slog.Logger) *Pipeline {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 16
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Workers = max(cfg.Workers, 1)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{
		cfg:        cfg,
		classifier: c,
		sinks:      sinks,
		log:        log,
		metrics:    metrics,
		admit:      make(chan struct{}, cfg.MaxQueue),
		boxes:      map[string]*mailbox{},
		running:    map[uint64]time.Time{},
		done:       cfg.Now(),
	}
}

// AddSource registers a source; call before Run.
func (p *Pipeline) AddSource(s Source) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sources = append(p.sources, s)
	p.boxes[s.Name()] = newMailbox()
}

// AddSink registers another sink; call before Run.
func (p *Pipeline) AddSink(s Sink) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sinks = append(p.sinks, s)
}

// Sources returns the state of every source.
func (p *Pipeline) Sources() []source.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	states := make([]source.State, len(p.sources))
	for i, s := range p.sources {
		states[i] = s.State()
	}
	return states
}

// Run runs every source and feeds its frames through the classifier until
// ctx ends, then waits for the sources and the frames in progress.
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New("pipeline: already running")
	}
	p.started = true
	sources := append([]Source(nil), p.sources...)
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range sources {
		box := p.boxes[s.Name()]
		wg.Add(1 + p.cfg.Workers)
		go func() {
			defer wg.Done()
			out := &output{p: p, box: box, name: s.Name(), kind: s.Kind()}
			if err := s.Run(ctx, out); err != nil && ctx.Err() == nil {
				p.log.Error("source stopped", "source", s.Name(), "err", err)
			}
		}()
		for range p.cfg.Workers {
			go func() {
				defer wg.Done()
				p.drain(ctx, box)
			}()
		}
	}
	wg.Wait()
	return nil
}

// drain classifies the latest frames of one live source and publishes
// the outcomes in the order the frames were taken.
func (p *Pipeline) drain(ctx context.Context, box *mailbox) {
	for {
		f, ticket, ok := box.take(ctx)
		if !ok {
			return
		}
		// Frames already taken finish even if ctx ends meanwhile: the
		// classification takes milliseconds and its result is published.
		e := p.classify(context.WithoutCancel(ctx), f)
		box.done(ticket, e, p.publish)
	}
}

// Request classifies a frame for a caller that waits for the answer (HTTP,
// MQTT). It refuses with ErrOverloaded rather than queueing without bound.
func (p *Pipeline) Request(ctx context.Context, f source.Frame) (edge.Result, error) {
	select {
	case p.admit <- struct{}{}:
	default:
		p.metrics.frame(f, outcomeOverloaded)
		return edge.Result{}, ErrOverloaded
	}
	defer func() { <-p.admit }()
	return p.Classify(ctx, f)
}

// Classify classifies a frame for a caller that waits and brings its own
// flow control (MQTT: the broker's in-flight window and the subscriber's
// worker count), so no admission limit applies; it waits for an
// interpreter while ctx allows.
func (p *Pipeline) Classify(ctx context.Context, f source.Frame) (edge.Result, error) {
	e := p.classify(ctx, f)
	p.publish(e)
	return e.Result, e.Err
}

// QueueDepth is the number of requests admitted and not yet answered.
func (p *Pipeline) QueueDepth() int { return len(p.admit) }

// classify classifies one frame and counts the outcome.
func (p *Pipeline) classify(ctx context.Context, f source.Frame) Event {
	id := p.begin()
	res, err := p.classifier.Classify(ctx, f.Data)
	p.end(id)
	if err != nil {
		outcome := outcomeError
		if errors.Is(err, classify.ErrBadImage) {
			outcome = outcomeRejected
		}
		p.metrics.frame(f, outcome)
		return Event{Frame: f, Err: err}
	}
	res.DeviceID = p.cfg.DeviceID
	res.Source = f.Kind
	res.RequestID = f.RequestID
	res.FrameID = f.ID
	if !f.CapturedAt.IsZero() {
		res.CapturedAt = f.CapturedAt.UTC()
	}
	p.metrics.frame(f, outcomeClassified)
	p.metrics.result(res)
	return Event{Result: res, Frame: f}
}

func (p *Pipeline) publish(e Event) {
	p.mu.Lock()
	sinks := p.sinks
	p.mu.Unlock()
	for _, s := range sinks {
		s.Publish(e)
	}
}

func (p *Pipeline) begin() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextRun++
	p.running[p.nextRun] = p.cfg.Now()
	p.metrics.setInflight(len(p.running))
	return p.nextRun
}

func (p *Pipeline) end(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, id)
	p.done = p.cfg.Now()
	p.metrics.setInflight(len(p.running))
}

// Healthy reports whether the pipeline makes progress: no classification
// has run longer than the stall timeout, and no live frame has waited that
// long without any classification finishing. An idle pipeline is healthy.
// The systemd watchdog is fed only while this holds.
func (p *Pipeline) Healthy() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	for _, start := range p.running {
		if d := now.Sub(start); d > p.cfg.StallTimeout {
			return fmt.Errorf("pipeline: a classification has run for %s", d.Round(time.Second))
		}
	}
	for name, box := range p.boxes {
		since, waiting := box.waitingSince()
		if waiting && now.Sub(since) > p.cfg.StallTimeout && now.Sub(p.done) > p.cfg.StallTimeout {
			return fmt.Errorf("pipeline: frames from %s have waited %s", name, now.Sub(since).Round(time.Second))
		}
	}
	return nil
}

// output is what one source hands its frames to.
type output struct {
	p          *Pipeline
	box        *mailbox
	name, kind string
}

func (o *output) Offer(f source.Frame) {
	f.Source, f.Kind = o.name, o.kind
	if o.box.put(f, o.p.cfg.Now()) {
		o.p.metrics.frame(f, outcomeDropped)
	}
}

func (o *output) Submit(ctx context.Context, f source.Frame) error {
	f.Source, f.Kind = o.name, o.kind
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := o.p.Classify(context.WithoutCancel(ctx), f)
	return err
}

// mailbox holds the latest frame of a live source.
type mailbox struct {
	mu    sync.Mutex
	frame source.Frame
	full  bool
	since time.Time // when the box last went from empty to full
	ready chan struct{}

	// Tickets order publishing when several workers drain one box.
	taken      uint64           // tickets handed out
	turn       uint64           // ticket whose turn it is to publish
	pending    map[uint64]Event // finished out of turn, at most one per worker
	publishing bool             // a worker is publishing pending events
}

func newMailbox() *mailbox {
	return &mailbox{ready: make(chan struct{}, 1), pending: map[uint64]Event{}}
}

// done hands over the event of ticket's frame. Events are published in
// ticket order, one at a time, by whichever worker completes the turn; a
// worker finishing out of turn leaves its event and goes on to the next
// frame at once instead of waiting for the earlier ones.
func (b *mailbox) done(ticket uint64, e Event, publish func(Event)) {
	b.mu.Lock()
	b.pending[ticket] = e
	if b.publishing {
		b.mu.Unlock() // the publishing worker will get to it
		return
	}
	b.publishing = true
	for {
		next, ok := b.pending[b.turn]
		if !ok {
			break
		}
		delete(b.pending, b.turn)
		b.turn++
		b.mu.Unlock()
		publish(next)
		b.mu.Lock()
	}
	b.publishing = false
	b.mu.Unlock()
}

// put stores f, replacing a frame not yet taken; it reports whether one
// was replaced (dropped).
func (b *mailbox) put(f source.Frame, now time.Time) (dropped bool) {
	b.mu.Lock()
	dropped = b.full
	if !b.full {
		b.since = now
	}
	b.frame, b.full = f, true
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return dropped
}

// take waits for a frame or for ctx to end; the ticket orders publishing.
func (b *mailbox) take(ctx context.Context) (source.Frame, uint64, bool) {
	for {
		b.mu.Lock()
		if b.full {
			f, ticket := b.frame, b.taken
			b.frame, b.full = source.Frame{}, false
			b.taken++
			b.mu.Unlock()
			return f, ticket, true
		}
		b.mu.Unlock()
		select {
		case <-b.ready:
		case <-ctx.Done():
			return source.Frame{}, 0, false
		}
	}
}

func (b *mailbox) waitingSince() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.since, b.full
}

// WorkersFor is how many workers (Config.Workers) suit interpreters x
// threads on cores: how many frames to work on at once. One
// more than interpreters decodes the next frame while the current ones are
// inferred, which pays only when inference leaves a core idle: when the
// interpreters' threads already cover the cores, the extra decoding thread
// time-slices with them and costs more than it overlaps (make bench, 2
// cores, XNNPACK: 2 interpreters x 1 thread classify 123/s with 2 workers
// against 106/s with 3; 1 x 2 threads, 110/s against 95/s).
func WorkersFor(interpreters, threads, cores int) int {
	if interpreters*threads < cores {
		return interpreters + 1
	}
	return interpreters
}
