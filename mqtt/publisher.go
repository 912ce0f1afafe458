package mqtt

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

// message is one MQTT publication.
type message struct {
	kind     string // topic kind, for metrics
	topic    string
	payload  []byte
	qos      byte
	retained bool
}

// Publish is the pipeline.Sink: it queues the event's prediction (or, for
// a failed event, its rejection on the errors topic) and feeds the state.
// It never blocks on the network: when the buffer is full, the oldest
// queued message is dropped and counted.
func (c *Client) Publish(e pipeline.Event) {
	if e.Frame.Kind == source.KindMQTT {
		c.reqs.markSeen(e.Frame.ID)
	}
	if e.Err != nil {
		c.enqueue(kindErrors, c.topics.Errors, 1, e.Rejection())
		return
	}
	c.enqueue(kindPredictions, c.topics.Predictions, byte(*c.cfg.QoS), e.Result)
	if st, changed := c.state.observe(e, c.now); changed {
		c.log.Info("mqtt: state changed", "label", st.Label, "frame_id", st.FrameID, "source", st.Source)
		c.signal()
	}
}

func (c *Client) enqueue(kind, topic string, qos byte, v any) {
	payload, err := json.Marshal(v)
	if err != nil {
		// Only a NaN or infinite score gets here; counted as dropped so
		// that every event stays accounted for.
		c.queue.countDrop()
		c.log.Error("mqtt: encode message", "topic", topic, "err", err)
		return
	}
	c.queue.push(message{kind: kind, topic: topic, payload: payload, qos: qos})
}

func (c *Client) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// publishLoop publishes the pending state and the queue, one message at a
// time, in order, until the connection is lost, or idle is closed (with
// the message in flight finished), or abort is closed; with untilEmpty it
// also returns once nothing is left. A message that was not acknowledged
// goes back to the head of the queue, except one given up at abort: the
// broker may have it, so it is counted as dropped rather than resent.
func (c *Client) publishLoop(pc paho.Client, k *conn, idle, abort <-chan struct{}, untilEmpty bool) {
	for {
		select {
		case <-idle:
			return
		default:
		}
		m, done, requeue, ok := c.next()
		if !ok {
			if untilEmpty {
				return
			}
			select {
			case <-c.ready:
				continue
			case <-k.lost:
				return
			case <-idle:
				return
			}
		}
		err := c.send(pc, m, k, abort)
		switch {
		case err == nil:
			c.m.published.WithLabelValues(m.kind).Inc()
			done()
			continue
		case errors.Is(err, errAbandoned):
			c.fail("mqtt: publish abandoned", err)
			if m.kind != kindState {
				c.queue.done()
				c.queue.countDrop()
			}
			return
		}
		requeue()
		if errors.Is(err, errNotSent) || errors.Is(err, errLost) {
			return
		}
		// The token failed on a connection not (yet) reported lost,
		// typically a write error that is about to be. Resending at once
		// could spin; the pause gives paho time to report the loss.
		c.fail("mqtt: publish failed", err)
		t := time.NewTimer(time.Second)
		select {
		case <-t.C:
		case <-k.lost:
		case <-abort:
		}
		t.Stop()
	}
}

// next returns the next message to publish, a function to call once it
// is published and one that puts it back: the pending state first (a
// single retained value, never dropped), then the head of the queue.
func (c *Client) next() (m message, done, requeue func(), ok bool) {
	if st, ok := c.state.take(); ok {
		payload, err := json.Marshal(st)
		if err == nil {
			m := message{kind: kindState, topic: c.topics.State, payload: payload, qos: 1, retained: true}
			return m, func() {}, func() { c.state.putBack(st) }, true
		}
		c.log.Error("mqtt: encode state", "err", err)
	}
	m, ok = c.queue.take()
	done = func() {
		c.mu.Lock()
		c.published++
		c.mu.Unlock()
		c.queue.done()
	}
	return m, done, func() { c.queue.putBack(m) }, ok
}

// send publishes one message and waits for paho's token.
func (c *Client) send(pc paho.Client, m message, k *conn, abort <-chan struct{}) error {
	select {
	case <-k.lost:
		// Not handed to paho, which would hold the packet until its
		// WriteTimeout with no connection to write it to.
		return errLost
	case <-abort:
		return errNotSent
	default:
	}
	return c.wait(pc.Publish(m.topic, m.qos, m.retained, m.payload), k, abort)
}

// queue is the bounded, ordered buffer of predictions and errors. The
// publisher takes the head out while it is in flight, so that a full
// buffer drops the oldest message still waiting, never the one being
// sent, and puts it back at the head if it was not acknowledged.
type queue struct {
	mu      sync.Mutex
	buf     []message // ring of cap messages from head
	head, n int
	inHand  bool // the publisher holds the message taken last
	dropped uint64
	m       *metrics
	ready   chan<- struct{}
}

func newQueue(capacity int, m *metrics, ready chan<- struct{}) *queue {
	return &queue{buf: make([]message, max(capacity, 1)), m: m, ready: ready}
}

// push appends msg, dropping the oldest waiting message if full.
func (q *queue) push(msg message) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.buf[q.head] = message{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.dropLocked(1)
	}
	q.buf[(q.head+q.n)%len(q.buf)] = msg
	q.n++
	q.depthLocked()
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes and returns the head.
func (q *queue) take() (message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return message{}, false
	}
	msg := q.buf[q.head]
	q.buf[q.head] = message{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	q.inHand = true
	return msg, true
}

// putBack returns the message taken last to the head. It is the oldest
// of all, so when the queue filled up meanwhile it is the one dropped.
func (q *queue) putBack(msg message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inHand = false
	if q.n == len(q.buf) {
		q.dropLocked(1)
		q.depthLocked()
		return
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = msg
	q.n++
	q.depthLocked()
}

// done forgets the message taken last: published, or counted as dropped
// by the caller.
func (q *queue) done() {
	q.mu.Lock()
	q.inHand = false
	q.depthLocked()
	q.mu.Unlock()
}

// dropAll drops everything left and returns how many.
func (q *queue) dropAll() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.n
	if q.inHand {
		n++
		q.inHand = false
	}
	clear(q.buf)
	q.head, q.n = 0, 0
	q.dropLocked(n)
	q.depthLocked()
	return n
}

func (q *queue) countDrop() {
	q.mu.Lock()
	q.dropLocked(1)
	q.mu.Unlock()
}

func (q *queue) dropLocked(n int) {
	q.dropped += uint64(n)
	q.m.dropped.Add(float64(n))
}

func (q *queue) depthLocked() {
	d := q.n
	if q.inHand {
		d++
	}
	q.m.depth.Set(float64(d))
}

// len counts the messages waiting or in flight.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inHand {
		return q.n + 1
	}
	return q.n
}

func (q *queue) droppedCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// stateBox holds the Debouncer and the latest state not yet published.
type stateBox struct {
	on      bool
	sources []string

	mu      sync.Mutex
	deb     Debouncer
	pending *State
}

func newStateBox(cfg StateConfig) *stateBox {
	return &stateBox{
		on:      cfg.On(),
		sources: slices.Clone(cfg.Sources),
		deb:     Debouncer{MinFrames: cfg.MinFrames, MinDwell: cfg.MinDwell},
	}
}

// observe feeds a successful event's top label to the debouncer.
func (s *stateBox) observe(e pipeline.Event, now func() time.Time) (State, bool) {
	if !s.on || len(e.Result.Predictions) == 0 {
		return State{}, false
	}
	kind := e.Frame.Kind
	if kind == "" {
		kind = e.Result.Source
	}
	if len(s.sources) > 0 && !slices.Contains(s.sources, kind) {
		return State{}, false
	}
	at := e.Result.CapturedAt
	if at.IsZero() {
		at = now().UTC()
	}
	top := e.Result.Predictions[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	st, changed := s.deb.Observe(State{Label: top.Label, Score: top.Score, Since: at, FrameID: e.Result.FrameID, Source: kind})
	if changed {
		s.pending = &st
	}
	return st, changed
}

// take returns the state to publish, if any.
func (s *stateBox) take() (State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return State{}, false
	}
	st := *s.pending
	s.pending = nil
	return st, true
}

// putBack restores a state that was not published, unless a newer one
// is pending.
func (s *stateBox) putBack(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = &st
	}
}

// republish queues the current state again, for a broker that may have
// lost its retained messages.
func (s *stateBox) republish(ready chan<- struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.deb.Current(); ok && s.pending == nil {
		s.pending = &st
		select {
		case ready <- struct{}{}:
		default:
		}
	}
}
