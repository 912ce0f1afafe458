package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

// Sentinel errors.
var (
	// ErrDisabled is returned by New for a config without a broker.
	ErrDisabled = errors.New("mqtt: no broker configured")
	// ErrAlreadyRunning is returned by a second call of Run.
	ErrAlreadyRunning = errors.New("mqtt: already running")
)

// Availability payloads.
const (
	Online  = "online"
	Offline = "offline"
)

// Client publishes results to an MQTT broker and takes classify requests
// from it. Create it with New, run it with Run; Publish and Status are
// safe for concurrent use at any time.
type Client struct {
	cfg    Config
	device string
	cls    Classifier
	log    *slog.Logger
	m      *metrics
	topics topics
	tls    *tls.Config
	// secrets are replaced in every error text the client reports.
	secrets []string
	now     func() time.Time

	queue *queue    // predictions and errors, in order
	state *stateBox // the debounced state
	reqs  *requests // classify requests in progress
	ready chan struct{}

	started atomic.Bool

	mu         sync.Mutex // guards the fields below
	broker     string     // redacted
	conn       *conn      // the current connection attempt
	connected  bool
	since      time.Time
	lastErr    string
	published  uint64
	reconnects uint64
}

// topics adds to Topics what the client uses internally.
type topics struct {
	Topics
	base, classifyFilter string
}

func newTopics(prefix, device string) topics {
	base := prefix + "/" + device
	return topics{
		Topics: Topics{
			Availability: base + "/availability",
			Predictions:  base + "/predictions",
			Errors:       base + "/errors",
			State:        base + "/state",
			Classify:     base + "/classify",
		},
		base:           base,
		classifyFilter: base + "/classify/#",
	}
}

// New returns a client for deviceID (a single topic level) that sends
// classify requests to cls and registers its metrics on reg (nil: none).
// It fills cfg's defaults and validates it; a config without a broker is
// ErrDisabled. log may be nil.
func New(cfg Config, deviceID string, cls Classifier, reg prometheus.Registerer, log *slog.Logger) (*Client, error) {
	if cfg.Broker == "" {
		return nil, ErrDisabled
	}
	if cls == nil {
		return nil, errors.New("mqtt: nil Classifier")
	}
	if deviceID == "" {
		return nil, errors.New("mqtt: empty device id")
	}
	if err := checkTopicPart(deviceID); err != nil || strings.Contains(deviceID, "/") {
		return nil, fmt.Errorf("mqtt: device id %q is not a single topic level", deviceID)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt: config: %w", err)
	}
	cfg.SetDefaults()
	if cfg.ClientID == "" {
		cfg.ClientID = "edgeinfer-" + deviceID
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		device: deviceID,
		cls:    cls,
		m:      m,
		topics: newTopics(cfg.Prefix, deviceID),
		now:    time.Now,
		since:  time.Now(),
		ready:  make(chan struct{}, 1),
		broker: source.RedactURL(cfg.Broker),
	}
	c.log = log.With("broker", c.broker, "client_id", cfg.ClientID)
	if cfg.Password != "" {
		c.secrets = append(c.secrets, cfg.Password)
	}
	if u, err := url.Parse(cfg.Broker); err == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			c.secrets = append(c.secrets, p)
		}
	}
	if cfg.Broker != BrokerEmbedded && (strings.HasPrefix(cfg.Broker, "ssl:") || strings.HasPrefix(cfg.Broker, "wss:")) {
		if c.tls, err = buildTLS(cfg.TLS); err != nil {
			return nil, err
		}
		if cfg.TLS.InsecureSkipVerify {
			c.log.Warn("tls.insecure_skip_verify is set: the broker's certificate is not checked")
		}
	}
	c.queue = newQueue(cfg.Buffer, m, c.ready)
	c.state = newStateBox(cfg.State)
	c.reqs = newRequests(cfg.Inflight)
	return c, nil
}

// Run connects to the broker, keeps reconnecting with exponential backoff
// (1s doubling up to MaxReconnectInterval, with jitter) whenever the
// broker is unreachable or the connection drops, and publishes until ctx
// ends. It then finishes the classify requests in progress, publishes
// what is buffered and "offline" (each bounded by ShutdownTimeout),
// disconnects, and returns once all its goroutines have ended. With
// Broker "embedded" it also runs the embedded broker for as long.
func (c *Client) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	broker := c.cfg.Broker
	if broker == BrokerEmbedded {
		emb, err := StartEmbedded(c.cfg.Embedded.Listen, c.log)
		if err != nil {
			return err
		}
		defer func() {
			if err := emb.Close(); err != nil {
				c.log.Warn("embedded broker close", "err", err)
			}
		}()
		broker = "tcp://" + emb.Addr()
		c.mu.Lock()
		c.broker = broker + " (embedded)"
		c.mu.Unlock()
	}
	// abort closes ShutdownTimeout after ctx ends. Until then, the
	// requests at the classifier, the message in flight and the flush of
	// the buffer may finish; after it, they are given up. It is also the
	// classifier's context, so classifications outlive ctx by as much.
	abortCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	defer afterDone(ctx, c.cfg.ShutdownTimeout, abort)()
	c.reqs.ctx = abortCtx

	pc := paho.NewClient(c.options(broker))
	// The route exists before the first CONNECT so that requests a
	// persistent session delivers right after CONNACK are handled.
	pc.AddRoute(c.topics.classifyFilter, c.onClassify)

	c.log.Info("mqtt starting", "topics", c.topics.base)
	backoff := time.Second
	first := true
	for {
		k := newConn()
		c.mu.Lock()
		c.conn = k
		c.mu.Unlock()
		err := c.connect(pc)
		if err != nil {
			c.fail("mqtt: connect failed", err)
			if !sleep(ctx, jitter(backoff)) {
				break
			}
			backoff = min(2*backoff, c.cfg.MaxReconnectInterval)
			continue
		}
		c.setConnected(true, first)
		first = false
		up := time.Now()

		c.onConnect(pc, k, abortCtx.Done())
		c.publishLoop(pc, k, ctx.Done(), abortCtx.Done(), false)
		select {
		case <-k.lost:
		default:
			// ctx ended with the connection up.
			c.shutdown(pc, k, abortCtx.Done())
			return nil
		}
		c.setConnected(false, false)
		c.fail("mqtt: connection lost", k.err)
		// Only a connection that lasted resets the backoff: one that the
		// broker drops at once (a second device with the same client id,
		// an ACL) must not be retried every second.
		if time.Since(up) >= c.cfg.MaxReconnectInterval {
			backoff = time.Second
		}
		if !sleep(ctx, jitter(backoff)) {
			break
		}
		backoff = min(2*backoff, c.cfg.MaxReconnectInterval)
	}
	// ctx ended while disconnected: the broker already published the Will.
	c.reqs.close()
	c.dropLeftovers()
	return nil
}

// shutdown ends a connected Run: requests in progress are answered and
// the buffer is flushed, both until abort; then "offline" is published,
// bounded by ShutdownTimeout, and the client disconnects.
func (c *Client) shutdown(pc paho.Client, k *conn, abort <-chan struct{}) {
	c.reqs.close()
	c.publishLoop(pc, k, nil, abort, true)

	offline := message{kind: kindAvailability, topic: c.topics.Availability, payload: []byte(Offline), qos: 1, retained: true}
	bound, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	if err := c.send(pc, offline, k, bound.Done()); err != nil {
		c.fail("mqtt: publish offline failed", err)
	} else {
		c.m.published.WithLabelValues(kindAvailability).Inc()
	}
	cancel()
	pc.Disconnect(250)
	c.setConnected(false, false)
	c.dropLeftovers()
	c.log.Info("mqtt disconnected")
}

// dropLeftovers counts what could not be published before Run returned.
func (c *Client) dropLeftovers() {
	if n := c.queue.dropAll(); n > 0 {
		c.log.Warn("mqtt: messages not published at shutdown", "dropped", n)
	}
}

func (c *Client) setConnected(up, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected == up {
		return
	}
	c.connected, c.since = up, c.now()
	if up {
		c.m.connected.Set(1)
		if !first {
			c.reconnects++
			c.m.reconnects.Inc()
		}
	} else {
		c.m.connected.Set(0)
	}
}

// fail records err as the last error and logs it under msg, with secrets
// removed.
func (c *Client) fail(msg string, err error) {
	if err == nil || errors.Is(err, errNotSent) {
		return
	}
	text := c.redact(err.Error())
	c.mu.Lock()
	c.lastErr = text
	c.mu.Unlock()
	c.log.Warn(msg, "err", text)
}

func (c *Client) redact(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, "xxxxx")
	}
	return s
}

// Status returns the client's current state.
func (c *Client) Status() edge.BrokerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return edge.BrokerStatus{
		Broker:     c.broker,
		Connected:  c.connected,
		Since:      c.since,
		LastError:  c.lastErr,
		Buffered:   c.queue.len(),
		Published:  c.published,
		Dropped:    c.queue.droppedCount(),
		Reconnects: c.reconnects,
	}
}

// Topics are the full names of a client's topics.
type Topics struct {
	Availability string `json:"availability"`
	Predictions  string `json:"predictions"`
	Errors       string `json:"errors"`
	State        string `json:"state"`
	// Classify is the parent of the request topics: images go to
	// Classify + "/" + request id.
	Classify string `json:"classify"`
}

// Topics returns the client's topic names.
func (c *Client) Topics() Topics { return c.topics.Topics }
