package mqtt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// conn tracks one connection: lost is closed, and err set, when paho
// reports that connection lost.
type conn struct {
	lost chan struct{}
	once sync.Once
	err  error
}

func newConn() *conn { return &conn{lost: make(chan struct{})} }

func (k *conn) lose(err error) {
	k.once.Do(func() {
		if err == nil {
			err = errors.New("connection lost")
		}
		k.err = err
		close(k.lost)
	})
}

// afterDone calls f d after ctx is done; the returned function cancels
// that if it has not happened yet.
func afterDone(ctx context.Context, d time.Duration, f func()) (stop func()) {
	var (
		mu    sync.Mutex
		timer *time.Timer
	)
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(d, f)
		mu.Unlock()
	})
	return func() {
		stopAfter()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
	}
}

// options are paho's options; see the package documentation for why
// reconnecting is left to Run.
func (c *Client) options(broker string) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(c.cfg.ClientID).
		SetUsername(c.cfg.Username).
		SetPassword(c.cfg.Password).
		SetCleanSession(!c.cfg.PersistentSession).
		SetProtocolVersion(4).
		SetKeepAlive(c.cfg.KeepAlive).
		SetPingTimeout(min(c.cfg.KeepAlive, 10*time.Second)).
		SetConnectTimeout(c.cfg.ConnectTimeout).
		SetWriteTimeout(c.cfg.PublishTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetOrderMatters(false).
		SetAutoAckDisabled(true).
		SetStore(sessionStore{paho.NewMemoryStore()}).
		SetBinaryWill(c.topics.Availability, []byte(Offline), 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.mu.Lock()
			k := c.conn
			c.mu.Unlock()
			k.lose(err)
		}).
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
			// Left over from an old subscription of a persistent session:
			// acknowledged so that the broker stops sending it.
			msg.Ack()
			c.log.Debug("message on an unexpected topic", "topic", msg.Topic())
		})
	if c.tls != nil {
		o.SetTLSConfig(c.tls)
	}
	return o
}

// connect makes one connection attempt. paho bounds it by ConnectTimeout
// (dial, TLS handshake and CONNACK), so the token is waited for without a
// timer of our own: giving up on it early could leave paho connected
// behind our back.
func (c *Client) connect(pc paho.Client) error {
	tok := pc.Connect()
	<-tok.Done()
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: connect: %w", err)
	}
	return nil
}

// onConnect subscribes and announces "online" on every new connection; a
// clean session has forgotten the subscription, and a restarted broker
// may have lost the retained messages.
func (c *Client) onConnect(pc paho.Client, k *conn, abort <-chan struct{}) {
	if err := c.subscribe(pc, k, abort); err != nil {
		c.fail("mqtt: subscribe failed", err)
	}
	online := message{kind: kindAvailability, topic: c.topics.Availability, payload: []byte(Online), qos: 1, retained: true}
	if err := c.send(pc, online, k, abort); err != nil {
		c.fail("mqtt: publish online failed", err)
	} else {
		c.m.published.WithLabelValues(kindAvailability).Inc()
	}
	c.state.republish(c.ready)
	c.log.Info("mqtt connected")
}

func (c *Client) subscribe(pc paho.Client, k *conn, abort <-chan struct{}) error {
	tok := pc.Subscribe(c.topics.classifyFilter, 1, nil)
	if err := c.wait(tok, k, abort); err != nil {
		return fmt.Errorf("mqtt: subscribe %s: %w", c.topics.classifyFilter, err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok && st.Result()[c.topics.classifyFilter] == subackFailure {
		return fmt.Errorf("mqtt: subscribe %s: refused by the broker", c.topics.classifyFilter)
	}
	return nil
}

// wait waits for a token until it completes, the connection is lost, or
// abort is closed (errAbandoned: the broker may or may not have the
// message). PublishTimeout only paces warnings: see the package
// documentation for why a slow token is not given up.
func (c *Client) wait(tok paho.Token, k *conn, abort <-chan struct{}) error {
	t := time.NewTimer(c.cfg.PublishTimeout)
	defer t.Stop()
	waited := time.Duration(0)
	for {
		select {
		case <-tok.Done():
			return tok.Error()
		case <-k.lost:
			// paho completes a token whose acknowledgement it read before
			// it noticed the connection closing.
			select {
			case <-tok.Done():
				if tok.Error() == nil {
					return nil
				}
			default:
			}
			return fmt.Errorf("%w: %w", errLost, k.err)
		case <-abort:
			return errAbandoned
		case <-t.C:
			waited += c.cfg.PublishTimeout
			c.fail("mqtt: broker slow", fmt.Errorf("mqtt: no acknowledgement after %s; still waiting on this connection", waited))
			t.Reset(c.cfg.PublishTimeout)
		}
	}
}

// subackFailure is the SUBACK return code of a refused subscription.
const subackFailure = 0x80

var (
	// errLost: the connection was lost before the broker acknowledged.
	errLost = errors.New("mqtt: connection lost")
	// errNotSent: shutting down; the message was not handed to paho.
	errNotSent = errors.New("mqtt: not sent: shutting down")
	// errAbandoned: shutting down; the message was handed to paho and
	// its acknowledgement not waited for.
	errAbandoned = errors.New("mqtt: gave up waiting for the acknowledgement: shutting down")
)

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter spreads d by ±20% so that a fleet does not reconnect in lockstep
// after a broker restart.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sessionStore is paho's memory store without outgoing PUBLISH packets,
// so that paho never resends a message by itself on (re)connect: the
// publisher alone retries, and no message is sent twice by two parties.
// Incoming packets and subscriptions are stored as usual.
type sessionStore struct{ *paho.MemoryStore }

// Put stores m unless it is an outgoing PUBLISH.
func (s sessionStore) Put(key string, m packets.ControlPacket) {
	if _, ok := m.(*packets.PublishPacket); ok && strings.HasPrefix(key, "o.") {
		return
	}
	s.MemoryStore.Put(key, m)
}
