package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

// helperEnv makes the test binary run a client instead of the tests (for
// the SIGKILL test); helperDeviceEnv names its device.
const (
	helperEnv       = "EDGEINFER_MQTT_TEST_HELPER_BROKER"
	helperDeviceEnv = "EDGEINFER_MQTT_TEST_HELPER_DEVICE"
	// helperBlockEnv makes the helper persistent-session and its
	// classifier print "classifying <id>" and block forever.
	helperBlockEnv = "EDGEINFER_MQTT_TEST_HELPER_BLOCK"
)

func TestMain(m *testing.M) {
	if broker := os.Getenv(helperEnv); broker != "" {
		os.Exit(runHelper(broker, os.Getenv(helperDeviceEnv)))
	}
	goleak.VerifyTestMain(m)
}

// runHelper runs a client until it is signalled (or killed).
func runHelper(broker, device string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fc := &fakeClassifier{}
	cfg := Config{Broker: broker}
	if os.Getenv(helperBlockEnv) != "" {
		cfg.PersistentSession = true
		fc.block = func(f source.Frame) {
			fmt.Println("classifying", f.RequestID)
			<-ctx.Done()
		}
	}
	c, err := New(cfg, device, fc, nil, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fc.setSink(c)
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// leakCheck fails t if goroutines outlive it. Call it first: cleanups run
// last-registered first, so this one runs after the others.
func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// waitFor polls cond until it holds or timeout passes. The timeouts are
// generous: they only bound how long a failing test hangs.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// received is one message a collector got.
type received struct {
	topic    string
	payload  []byte
	dup      bool
	retained bool
}

// collector is an outside paho client that records what it receives on
// some topics; it resubscribes on every connection.
type collector struct {
	pc     paho.Client
	mu     sync.Mutex
	msgs   []received
	topics []string
}

func newCollector(t *testing.T, broker, clientID string, persistent bool, topics ...string) *collector {
	t.Helper()
	col := &collector{topics: topics}
	subscribed := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(!persistent).
		SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(pc paho.Client) {
			// Subscribing only here, once per connection: a second
			// SUBSCRIBE would make the broker send retained messages again.
			var err error
			for _, tp := range topics {
				if tok := pc.Subscribe(tp, 1, col.handle); tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
					err = tok.Error()
				}
			}
			select {
			case subscribed <- err:
			default:
			}
		})
	col.pc = paho.NewClient(opts)
	if tok := col.pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("collector subscribe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("collector did not subscribe")
	}
	t.Cleanup(func() { col.pc.Disconnect(250) })
	return col
}

func (col *collector) handle(_ paho.Client, m paho.Message) {
	col.mu.Lock()
	defer col.mu.Unlock()
	col.msgs = append(col.msgs, received{topic: m.Topic(), payload: bytes.Clone(m.Payload()), dup: m.Duplicate(), retained: m.Retained()})
}

// on returns the messages received on topic so far.
func (col *collector) on(topic string) []received {
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []received
	for _, m := range col.msgs {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// results decodes the predictions received on topic.
func (col *collector) results(t *testing.T, topic string) []edge.Result {
	t.Helper()
	var out []edge.Result
	for _, m := range col.on(topic) {
		var r edge.Result
		if err := json.Unmarshal(m.payload, &r); err != nil {
			t.Fatalf("prediction %q: %v", m.payload, err)
		}
		out = append(out, r)
	}
	return out
}

func (col *collector) decode(t *testing.T, m received) edge.Result {
	t.Helper()
	var r edge.Result
	if err := json.Unmarshal(m.payload, &r); err != nil {
		t.Fatalf("prediction %q: %v", m.payload, err)
	}
	return r
}

func (col *collector) rejections(t *testing.T, topic string) []edge.Rejection {
	t.Helper()
	var out []edge.Rejection
	for _, m := range col.on(topic) {
		var r edge.Rejection
		if err := json.Unmarshal(m.payload, &r); err != nil {
			t.Fatalf("rejection %q: %v", m.payload, err)
		}
		out = append(out, r)
	}
	return out
}

// outsidePublisher connects a plain paho client for publishing requests.
func outsidePublisher(t *testing.T, broker string) paho.Client {
	t.Helper()
	pc := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetAutoReconnect(false).
		SetClientID(fmt.Sprintf("test-pub-%d", time.Now().UnixNano())))
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { pc.Disconnect(250) })
	return pc
}

// outsidePublisherMaybe connects a plain paho client, or returns nil.
func outsidePublisherMaybe(broker string) paho.Client {
	pc := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetAutoReconnect(false).
		SetClientID(fmt.Sprintf("test-probe-%d", time.Now().UnixNano())))
	if tok := pc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return nil
	}
	return pc
}

// fakeClassifier stands in for the pipeline: payloads "IMG:<label>" are
// classified as <label>, anything else is an error; like the pipeline,
// it hands every event to the sink before it returns.
type fakeClassifier struct {
	mu     sync.Mutex
	sink   pipeline.Sink
	calls  map[string]int
	noSink bool               // do not hand events to the sink
	refuse error              // refuse every frame with this error
	block  func(source.Frame) // called first, for the process tests
}

func (f *fakeClassifier) setSink(s pipeline.Sink) {
	f.mu.Lock()
	f.sink = s
	f.mu.Unlock()
}

func (f *fakeClassifier) callsFor(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeClassifier) Classify(_ context.Context, fr source.Frame) (edge.Result, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[fr.RequestID]++
	sink, noSink, refuse, block := f.sink, f.noSink, f.refuse, f.block
	f.mu.Unlock()
	if block != nil {
		block(fr)
	}
	if refuse != nil {
		return edge.Result{}, refuse
	}
	if string(fr.Data) == "PANIC" {
		panic("classifier bug")
	}
	var (
		res edge.Result
		err error
	)
	switch {
	case len(fr.Data) == 0:
		err = errors.New("empty image")
	case !bytes.HasPrefix(fr.Data, []byte("IMG:")):
		err = errors.New("not an image")
	default:
		res = edge.Result{
			DeviceID: "dev", Source: fr.Kind, RequestID: fr.RequestID, FrameID: fr.ID,
			CapturedAt:  fr.CapturedAt.UTC(),
			Predictions: []edge.Prediction{{Label: string(fr.Data[4:]), Index: 1, Score: 0.9}},
		}
	}
	if sink != nil && !noSink {
		sink.Publish(pipeline.Event{Result: res, Frame: fr, Err: err})
	}
	return res, err
}

// runClient creates a client for cfg and runs it until the test ends;
// the returned stop cancels Run and waits for it.
func runClient(t *testing.T, cfg Config, device string, fc *fakeClassifier, log *slog.Logger) (*Client, func()) {
	t.Helper()
	c, err := New(cfg, device, fc, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	fc.setSink(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func connected(c *Client) func() bool { return func() bool { return c.Status().Connected } }
