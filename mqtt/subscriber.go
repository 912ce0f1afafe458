package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

// Classifier classifies a frame and waits for the outcome: the pipeline
// (its Request method), which blocks while interpreters are busy; that is
// the back-pressure. The pipeline hands the frame's event to its sinks,
// this client among them, before it returns; that event is what gets
// published. Classify must return soon after ctx is done: at shutdown
// Run waits for the requests in progress.
type Classifier interface {
	Classify(ctx context.Context, f source.Frame) (edge.Result, error)
}

// ClassifierFunc adapts a function, such as (*pipeline.Pipeline).Request,
// to Classifier.
type ClassifierFunc func(ctx context.Context, f source.Frame) (edge.Result, error)

// Classify calls f.
func (f ClassifierFunc) Classify(ctx context.Context, fr source.Frame) (edge.Result, error) {
	return f(ctx, fr)
}

// Errors published for classify requests refused before the classifier.
var (
	ErrNoRequestID  = errors.New("mqtt: no request id: publish the image to <prefix>/<device>/classify/<request_id>")
	ErrTooLarge     = errors.New("mqtt: image too large")
	ErrOverloaded   = errors.New("mqtt: too many classify requests in progress")
	ErrShuttingDown = errors.New("mqtt: shutting down")
	ErrRetained     = errors.New("mqtt: retained classify requests are refused (they would be classified again on every reconnect): clear the retained message")
	// ErrClassifierPanic is published when the classifier panicked.
	ErrClassifierPanic = errors.New("mqtt: internal error: the classifier panicked")
)

// recentAnswers is how many requests taken on are remembered to
// recognise redeliveries.
const recentAnswers = 1024

// requests tracks the classify requests in progress.
type requests struct {
	slots   chan struct{} // one per request allowed to classify at once
	waiting atomic.Int64  // requests waiting for a slot
	nextID  atomic.Uint64 // frame ids of MQTT requests
	ctx     context.Context
	seed    maphash.Seed

	mu      sync.Mutex
	closing bool
	stop    chan struct{} // closed when closing: waiting requests give up
	active  sync.WaitGroup
	seen    map[uint64]bool // frames at the classifier: has their event reached Publish?
	recent  map[requestKey]bool
	ring    []requestKey // recent, oldest first from next
	next    int
}

// requestKey identifies a request by its id and image.
type requestKey struct {
	id   string
	hash uint64
}

func newRequests(inflight int) *requests {
	return &requests{
		slots:  make(chan struct{}, inflight),
		stop:   make(chan struct{}),
		seen:   map[uint64]bool{},
		ctx:    context.Background(),
		seed:   maphash.MakeSeed(),
		recent: map[requestKey]bool{},
		ring:   make([]requestKey, 0, recentAnswers),
	}
}

func (r *requests) key(id string, payload []byte) requestKey {
	return requestKey{id: id, hash: maphash.Bytes(r.seed, payload)}
}

// remember records the request k and reports whether it is new among
// the last recentAnswers.
func (r *requests) remember(k requestKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recent[k] {
		return false
	}
	if len(r.ring) < recentAnswers {
		r.ring = append(r.ring, k)
	} else {
		delete(r.recent, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % recentAnswers
	}
	r.recent[k] = true
	return true
}

// enter registers a request unless the client is shutting down.
func (r *requests) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.active.Add(1)
	return true
}

func (r *requests) leave() { r.active.Done() }

// acquire waits for a classification slot. QoS 0 requests are not held
// back by the broker's in-flight window, so they may only queue behind as
// many others as there are slots.
func (r *requests) acquire(qos byte) error {
	select {
	case r.slots <- struct{}{}:
		return nil
	default:
	}
	if qos == 0 && r.waiting.Load() >= int64(cap(r.slots)) {
		return ErrOverloaded
	}
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	select {
	case r.slots <- struct{}{}:
		return nil
	case <-r.stop:
		return ErrShuttingDown
	}
}

func (r *requests) release() { <-r.slots }

func (r *requests) track(id uint64) {
	r.mu.Lock()
	r.seen[id] = false
	r.mu.Unlock()
}

// untrack forgets a frame and reports whether its event reached Publish.
func (r *requests) untrack(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen[id]
	delete(r.seen, id)
	return seen
}

func (r *requests) markSeen(id uint64) {
	r.mu.Lock()
	if _, ok := r.seen[id]; ok {
		r.seen[id] = true
	}
	r.mu.Unlock()
}

// close stops taking requests, lets the waiting ones give up, and waits
// for those at the classifier. Their context (Run's abort) is cancelled
// ShutdownTimeout after Run's context ended; a classifier must return
// once its context is done.
func (r *requests) close() {
	r.mu.Lock()
	if !r.closing {
		r.closing = true
		close(r.stop)
	}
	r.mu.Unlock()
	r.active.Wait()
}

// onClassify handles one classify request. paho runs it in a goroutine of
// its own (OrderMatters off), so it may wait for the classifier; the
// message is acknowledged once, when the outcome is known.
func (c *Client) onClassify(_ paho.Client, msg paho.Message) {
	defer msg.Ack()
	id := strings.TrimPrefix(strings.TrimPrefix(msg.Topic(), c.topics.Classify), "/")
	if !c.reqs.enter() {
		c.reject(id, ErrShuttingDown)
		return
	}
	defer c.reqs.leave()
	if id == "" {
		c.reject(id, ErrNoRequestID)
		return
	}
	if msg.Retained() {
		// The broker sends retained messages on every SUBSCRIBE, that is
		// on every reconnect: the image would be classified again each
		// time.
		c.reject(id, ErrRetained)
		return
	}
	payload := msg.Payload()
	if n := int64(len(payload)); n > c.cfg.MaxPayloadBytes {
		c.reject(id, fmt.Errorf("%w: %d bytes, max_payload_bytes is %d", ErrTooLarge, n, c.cfg.MaxPayloadBytes))
		return
	}
	// A request is remembered from the moment it is taken on, so that a
	// redelivery arriving while it is still at the classifier (its
	// PUBACK will go to a connection that is gone) is recognised too.
	if fresh := c.reqs.remember(c.reqs.key(id, payload)); msg.Duplicate() {
		if !fresh {
			// Answered or being answered, but the PUBACK was lost with the
			// connection: a second answer would be a duplicate.
			c.log.Info("mqtt: redelivered request already taken", "request_id", id)
			return
		}
		// The broker sent this request before and got no PUBACK: the
		// daemon may have died classifying it. Acknowledging before the
		// retry means an image that crashes the process (a decoder or
		// accelerator abort) costs one more crash, not a crash loop.
		msg.Ack()
	}
	f := source.Frame{
		Kind:       source.KindMQTT,
		Source:     source.KindMQTT,
		RequestID:  id,
		ID:         c.reqs.nextID.Add(1),
		CapturedAt: c.now(),
	}
	if err := c.reqs.acquire(msg.Qos()); err != nil {
		c.reject(id, err)
		return
	}
	defer c.reqs.release()
	// Copied only now, so that requests waiting for a slot do not hold
	// two copies of their image.
	f.Data = append([]byte{}, payload...)

	c.reqs.track(f.ID)
	res, err := c.classify(f)
	if !c.reqs.untrack(f.ID) {
		// The classifier refused the frame without handing an event to
		// the sinks (pipeline.ErrOverloaded), or is not wired to this
		// sink: answer here, so that every request gets one answer.
		e := pipeline.Event{Frame: f, Err: err}
		if err == nil {
			res.DeviceID = cmp.Or(res.DeviceID, c.device)
			res.Source = cmp.Or(res.Source, f.Kind)
			res.RequestID = cmp.Or(res.RequestID, f.RequestID)
			if res.FrameID == 0 {
				res.FrameID = f.ID
			}
			if res.CapturedAt.IsZero() {
				res.CapturedAt = f.CapturedAt.UTC()
			}
			e.Result = res
		}
		c.Publish(e)
	}
	if err != nil {
		c.m.requests.WithLabelValues(outcomeFailed).Inc()
		c.log.Debug("mqtt: classify request failed", "request_id", id, "err", err)
		return
	}
	c.m.requests.WithLabelValues(outcomeClassified).Inc()
}

// classify calls the classifier, turning a panic into an error so that
// one bad request is answered and acknowledged instead of taking the
// daemon down (and, redelivered, down again).
func (c *Client) classify(f source.Frame) (res edge.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("mqtt: classifier panicked", "request_id", f.RequestID, "panic", p, "stack", string(debug.Stack()))
			res, err = edge.Result{}, fmt.Errorf("%w: %v", ErrClassifierPanic, p)
		}
	}()
	return c.cls.Classify(c.reqs.ctx, f)
}

// reject answers a request refused before the classifier on the errors
// topic.
func (c *Client) reject(id string, err error) {
	c.m.requests.WithLabelValues(outcomeRejected).Inc()
	c.log.Info("mqtt: classify request rejected", "request_id", id, "err", err)
	c.enqueue(kindErrors, c.topics.Errors, 1, edge.Rejection{RequestID: id, Source: source.KindMQTT, Error: err.Error(), At: c.now().UTC()})
}
