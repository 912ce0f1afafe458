package mqtt

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// TestRoundTrip sends 1,000 images at QoS 1 from an outside client to
// classify/<id> and expects exactly one prediction per request id, on a
// real mosquitto and on the embedded broker.
func TestRoundTrip(t *testing.T) {
	brokers := map[string]func(t *testing.T) string{
		"mosquitto": func(t *testing.T) string { return mqtttest.Start(t).URL() },
		"embedded": func(t *testing.T) string {
			e, err := StartEmbedded("127.0.0.1:0", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := e.Close(); err != nil {
					t.Error(err)
				}
			})
			return "tcp://" + e.Addr()
		},
	}
	for name, start := range brokers {
		t.Run(name, func(t *testing.T) {
			leakCheck(t)
			broker := start(t)
			fc := &fakeClassifier{}
			c, _ := runClient(t, Config{Broker: broker}, "rt", fc, testLogger(t))
			waitFor(t, 20*time.Second, "connection", connected(c))
			predictions := c.Topics().Predictions
			col := newCollector(t, broker, "test-rt-sub", false, predictions, c.Topics().Errors)
			pub := outsidePublisher(t, broker)

			const n = 1000
			for i := range n {
				id := fmt.Sprintf("req-%04d", i)
				tok := pub.Publish(c.Topics().Classify+"/"+id, 1, false, "IMG:"+id)
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Fatalf("publish %s: %v", id, tok.Error())
				}
			}
			waitFor(t, 60*time.Second, fmt.Sprintf("%d predictions", n), func() bool { return len(col.on(predictions)) >= n })
			time.Sleep(200 * time.Millisecond) // a duplicate would arrive right behind
			seen := map[string]int{}
			for _, r := range col.results(t, predictions) {
				seen[r.RequestID]++
				if len(r.Predictions) != 1 || r.Predictions[0].Label != r.RequestID {
					t.Errorf("request %s: predictions %+v, want label %s", r.RequestID, r.Predictions, r.RequestID)
				}
				if r.Source != "mqtt" {
					t.Errorf("request %s: source %q, want mqtt", r.RequestID, r.Source)
				}
			}
			for i := range n {
				id := fmt.Sprintf("req-%04d", i)
				if seen[id] != 1 {
					t.Errorf("request %s answered %d times, want 1", id, seen[id])
				}
			}
			if len(seen) != n {
				t.Errorf("%d distinct request ids answered, want %d", len(seen), n)
			}
			if errs := col.on(c.Topics().Errors); len(errs) != 0 {
				t.Errorf("%d messages on the errors topic, first %s", len(errs), errs[0].payload)
			}
			st := c.Status()
			if st.Published != n || st.Dropped != 0 || st.Buffered != 0 {
				t.Errorf("status %+v, want %d published, none dropped or buffered", st, n)
			}
		})
	}
}
