package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

func TestNewErrors(t *testing.T) {
	fc := &fakeClassifier{}
	for _, tc := range []struct {
		name   string
		cfg    Config
		device string
		cls    Classifier
		want   string
	}{
		{"no broker", Config{}, "d", fc, ErrDisabled.Error()},
		{"no classifier", Config{Broker: "embedded"}, "d", nil, "nil Classifier"},
		{"no device", Config{Broker: "embedded"}, "", fc, "empty device id"},
		{"device with a slash", Config{Broker: "embedded"}, "a/b", fc, `device id "a/b" is not a single topic level`},
		{"device with a wildcard", Config{Broker: "embedded"}, "a+", fc, "not a single topic level"},
		{"bad config", Config{Broker: "embedded", QoS: new(5)}, "d", fc, "mqtt: config: qos: 5 is not 0, 1 or 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.device, tc.cls, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Broker: "embedded"}, "d", fc, reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Broker: "embedded"}, "d", fc, reg, nil); err == nil || !strings.Contains(err.Error(), "mqtt: metrics") {
		t.Fatalf("second New on one registry: %v", err)
	}
}

func TestQueue(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(3, m, make(chan struct{}, 1))
	msg := func(i int) message { return message{topic: fmt.Sprint(i)} }
	for i := 1; i <= 5; i++ {
		q.push(msg(i))
	}
	if q.len() != 3 || q.droppedCount() != 2 {
		t.Fatalf("len %d dropped %d, want 3 and 2", q.len(), q.droppedCount())
	}
	head, _ := q.take()
	if head.topic != "3" {
		t.Fatalf("head %s, want 3 (1 and 2 were the oldest)", head.topic)
	}
	// While 3 is in flight, the queue holds up to 3 others.
	q.push(msg(6))
	if q.len() != 4 || q.droppedCount() != 2 {
		t.Fatalf("len %d dropped %d with one in flight", q.len(), q.droppedCount())
	}
	// Not acknowledged: back at the head, and being the oldest, it is the
	// one dropped now that the queue is full.
	q.putBack(head)
	if q.len() != 3 || q.droppedCount() != 3 {
		t.Fatalf("after putBack: len %d dropped %d, want 3 and 3", q.len(), q.droppedCount())
	}
	next, _ := q.take()
	if next.topic != "4" {
		t.Fatalf("head %s, want 4", next.topic)
	}
	q.putBack(next) // room now: back at the head
	if h, _ := q.take(); h.topic != "4" {
		t.Fatalf("head after putBack %s, want 4", h.topic)
	}
	q.done()
	if n := q.dropAll(); n != 2 || q.len() != 0 || q.droppedCount() != 5 {
		t.Fatalf("dropAll %d, len %d, dropped %d", n, q.len(), q.droppedCount())
	}
}

// TestSecretsNotReported connects with credentials a broker refuses and
// checks that the password appears in no log line, status or error.
func TestSecretsNotReported(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	m := mqtttest.Start(t, "allow_anonymous false")
	// The listener above allows anonymous clients; per_listener_settings
	// is off, so the last allow_anonymous wins and everyone is refused.
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"password field", Config{Broker: m.URL(), Username: "edge", Password: secret}},
		{"password in the URL", Config{Broker: fmt.Sprintf("tcp://edge:%s@127.0.0.1:%d", secret, m.Port())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c, stop := runClient(t, tc.cfg, "secret", &fakeClassifier{}, log)
			waitFor(t, 20*time.Second, "the broker's refusal", func() bool { return c.Status().LastError != "" })
			stop()
			st, _ := json.Marshal(c.Status())
			for what, text := range map[string]string{"status": string(st), "logs": logs.String()} {
				if strings.Contains(text, secret) {
					t.Errorf("%s show the password: %s", what, text)
				}
			}
			if !strings.Contains(c.Status().LastError, "not Authorized") {
				t.Errorf("LastError %q, want the broker's refusal", c.Status().LastError)
			}
		})
	}
	t.Run("validation errors", func(t *testing.T) {
		for _, cfg := range []Config{
			{Broker: "ftp://edge:" + secret + "@h:1"},
			{Broker: "tcp://edge:" + secret + "@h"},
			{Broker: "tcp://edge:" + secret + "@h:1", Username: "edge", Password: secret},
			{Broker: "tcp://edge:" + secret + "@h:1/%zz"},
		} {
			err := cfg.Validate()
			if err == nil {
				t.Fatalf("%+v accepted", cfg.Broker)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
		}
	})
}

// syncWriter serialises writes from the client's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestRunTwice(t *testing.T) {
	leakCheck(t)
	e, err := StartEmbedded("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, _ := runClient(t, Config{Broker: "tcp://" + e.Addr()}, "twice", &fakeClassifier{}, nil)
	waitFor(t, 20*time.Second, "connection", connected(c))
	if err := c.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run: %v", err)
	}
}

func TestEmbedded(t *testing.T) {
	leakCheck(t)
	e, err := StartEmbedded("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartEmbedded(e.Addr(), nil); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("second broker on %s: %v", e.Addr(), err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBrokerEmbedded runs the client with Broker "embedded": Run starts
// the broker, outside clients use it, and Run stops it.
func TestBrokerEmbedded(t *testing.T) {
	leakCheck(t)
	port := mqtttest.FreePort(t)
	reg := prometheus.NewRegistry()
	fc := &fakeClassifier{}
	c, err := New(Config{Broker: "embedded", Embedded: EmbeddedConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port)}}, "emb", fc, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	fc.setSink(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// A cleanup, not a defer: the outside clients' cleanups, registered
	// later, must disconnect them before Run stops the broker.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	waitFor(t, 20*time.Second, "connection", connected(c))
	if want := fmt.Sprintf("tcp://127.0.0.1:%d (embedded)", port); c.Status().Broker != want {
		t.Errorf("Status().Broker = %q, want %q", c.Status().Broker, want)
	}
	broker := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	col := newCollector(t, broker, "test-emb-sub", false, c.Topics().Predictions, c.Topics().State)
	pub := outsidePublisher(t, broker)
	for i := range 3 {
		pub.Publish(fmt.Sprintf("%s/r%d", c.Topics().Classify, i), 1, false, "IMG:cat").Wait()
	}
	waitFor(t, 20*time.Second, "3 predictions and the state", func() bool {
		return len(col.on(c.Topics().Predictions)) >= 3 && len(col.on(c.Topics().State)) >= 1
	})
	if p, s := len(col.on(c.Topics().Predictions)), len(col.on(c.Topics().State)); p != 3 || s != 1 {
		t.Errorf("%d predictions and %d states, want 3 and 1", p, s)
	}
	var st State
	if err := json.Unmarshal(col.on(c.Topics().State)[0].payload, &st); err != nil || st.Label != "cat" || st.Source != "mqtt" {
		t.Errorf("state %s: %v", col.on(c.Topics().State)[0].payload, err)
	}

	want := map[string]float64{
		"edgeinfer_mqtt_connected":                                1,
		`edgeinfer_mqtt_requests_total{outcome=classified}`:       3,
		`edgeinfer_mqtt_published_total{topic_kind=predictions}`:  3,
		`edgeinfer_mqtt_published_total{topic_kind=state}`:        1,
		`edgeinfer_mqtt_published_total{topic_kind=availability}`: 1,
		"edgeinfer_mqtt_dropped_total":                            0,
		"edgeinfer_mqtt_buffer_depth":                             0,
		"edgeinfer_mqtt_reconnects_total":                         0,
	}
	// The request counter moves after the classifier returned, which is
	// after the prediction was queued.
	waitFor(t, 10*time.Second, "3 requests counted", func() bool {
		return gather(t, reg)[`edgeinfer_mqtt_requests_total{outcome=classified}`] == 3
	})
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// gather flattens a registry into "name{label=value}" -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

// TestStateSources checks that state.sources restricts what feeds the
// state, through Publish.
func TestStateSources(t *testing.T) {
	c, err := New(Config{Broker: "embedded", State: StateConfig{Sources: []string{"camera"}, MinFrames: 2}}, "st", &fakeClassifier{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(kind, label string, id uint64) pipeline.Event {
		return pipeline.Event{Frame: source.Frame{Kind: kind, ID: id}, Result: edge.Result{Source: kind, FrameID: id, Predictions: []edge.Prediction{{Label: label}}}}
	}
	c.Publish(ev("http", "dog", 1))
	c.Publish(ev("http", "dog", 2))
	if _, ok := c.state.take(); ok {
		t.Fatal("http results moved a camera-only state")
	}
	c.Publish(ev("camera", "cat", 1))
	c.Publish(ev("http", "dog", 3)) // ignored: does not break the camera's run
	c.Publish(ev("camera", "cat", 2))
	st, ok := c.state.take()
	if !ok || st.Label != "cat" || st.FrameID != 2 || st.Source != "camera" {
		t.Fatalf("state %+v, %v", st, ok)
	}
	off, err := New(Config{Broker: "embedded", State: StateConfig{Enabled: new(false)}}, "st", &fakeClassifier{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(5) {
		off.Publish(ev("camera", "cat", i))
	}
	if _, ok := off.state.take(); ok {
		t.Fatal("state published with state.enabled false")
	}
	if got := off.Status().Buffered; got != 5 {
		t.Fatalf("buffered %d predictions, want 5", got)
	}
}

func TestRecentAnswers(t *testing.T) {
	r := newRequests(1)
	first := r.key("a", []byte("image"))
	if !r.remember(first) {
		t.Fatal("a new request taken for a known one")
	}
	if r.remember(first) {
		t.Fatal("a known request taken for a new one")
	}
	if !r.remember(r.key("a", []byte("other image"))) {
		t.Fatal("another image with the same request id taken for a known request")
	}
	for i := range recentAnswers {
		r.remember(r.key(fmt.Sprint(i), nil))
	}
	if !r.remember(first) {
		t.Fatalf("still remembered after %d newer requests", recentAnswers)
	}
	if len(r.recent) != recentAnswers || len(r.ring) != recentAnswers {
		t.Fatalf("remembers %d (ring %d), want %d", len(r.recent), len(r.ring), recentAnswers)
	}
}
