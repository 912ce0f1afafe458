package mqtt

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// TestOutage publishes 10 results a second through Publish while
// mosquitto is stopped for several seconds and started again on the same
// port. The client must reconnect and resubscribe by itself, and a
// persistent-session subscriber must see frame ids strictly increasing,
// none twice, with delivered + dropped == produced. With a small buffer
// the dropped ones must be the oldest of the outage.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute of broker outages")
	}
	for _, tc := range []struct {
		name     string
		buffer   int
		interval time.Duration // between results
		produced uint64
		stopAt   int64 // results produced when the broker is stopped
		outage   time.Duration
	}{
		{"10-per-second", 1000, 100 * time.Millisecond, 130, 30, 6 * time.Second},
		{"small-buffer", 5, 100 * time.Millisecond, 130, 30, 6 * time.Second},
		// Results back to back, so that the stop almost surely catches
		// one in flight.
		{"back-to-back", 100000, 0, 20000, 3000, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			// Persistence keeps the subscriber's session, subscription and
			// queued messages across the restart.
			m := mqtttest.Start(t, "persistence true")
			fc := &fakeClassifier{}
			c, stop := runClient(t, Config{Broker: m.URL(), Buffer: tc.buffer}, "outage", fc, testLogger(t))
			waitFor(t, 20*time.Second, "connection", connected(c))
			predictions := c.Topics().Predictions
			col := newCollector(t, m.URL(), "test-outage-sub-"+tc.name, true, predictions)

			produced := tc.produced
			var sent atomic.Int64
			producerDone := make(chan struct{})
			go func() {
				defer close(producerDone)
				for i := uint64(1); i <= produced; i++ {
					if tc.interval > 0 {
						time.Sleep(tc.interval)
					} else if c.Status().Buffered > 50 {
						// Back to back, but not faster than the broker takes
						// them: the point is a message in flight at the stop.
						time.Sleep(time.Millisecond)
					}
					c.Publish(pipeline.Event{
						Frame:  source.Frame{Kind: source.KindCamera, Source: "cam0", ID: i},
						Result: edge.Result{Source: source.KindCamera, FrameID: i, Predictions: []edge.Prediction{{Label: "cat", Score: 0.9}}},
					})
					sent.Add(1)
				}
			}()
			defer func() { <-producerDone }()

			waitFor(t, 60*time.Second, "results produced before the stop", func() bool { return sent.Load() >= tc.stopAt })
			m.Stop()
			waitFor(t, 20*time.Second, "the client to notice the outage", func() bool { return !c.Status().Connected })
			time.Sleep(tc.outage)
			m.Start()
			waitFor(t, 60*time.Second, "the client to reconnect", func() bool {
				st := c.Status()
				return st.Connected && st.Reconnects >= 1
			})

			// Resubscribed: a request sent after the restart is answered.
			pub := outsidePublisher(t, m.URL())
			if tok := pub.Publish(c.Topics().Classify+"/after-restart", 1, false, "IMG:dog"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish request: %v", tok.Error())
			}
			waitFor(t, 30*time.Second, "the answer to a request sent after the restart", func() bool {
				return slices.ContainsFunc(col.results(t, predictions), func(r edge.Result) bool { return r.RequestID == "after-restart" })
			})

			<-producerDone
			var ids []uint64
			waitFor(t, 60*time.Second, "every result delivered or dropped", func() bool {
				ids = cameraIDs(t, col, predictions)
				st := c.Status()
				return st.Buffered == 0 && uint64(len(ids))+st.Dropped >= produced
			})
			stop()
			ids = cameraIDs(t, col, predictions)
			st := c.Status()
			t.Logf("delivered %d (%s), dropped %d, reconnects %d, broker redeliveries to the subscriber %d",
				len(ids), ranges(ids), st.Dropped, st.Reconnects, dupCount(col.on(predictions)))
			for i := 1; i < len(ids); i++ {
				if ids[i] <= ids[i-1] {
					t.Fatalf("frame %d delivered after frame %d: not strictly increasing; delivered %s", ids[i], ids[i-1], ranges(ids))
				}
			}
			if got := uint64(len(ids)) + st.Dropped; got != produced {
				t.Errorf("delivered %d + dropped %d = %d, want %d produced", len(ids), st.Dropped, got, produced)
			}
			missing := missingIDs(ids, produced)
			if uint64(tc.buffer) >= produced && len(missing) != 0 {
				t.Errorf("%d frames lost with a buffer of %d, first %v", len(missing), tc.buffer, missing[:min(len(missing), 10)])
			}
			if uint64(tc.buffer) < produced {
				if len(missing) == 0 {
					t.Fatalf("nothing dropped with a buffer of %d over a %s outage", tc.buffer, tc.outage)
				}
				// Drop-oldest: the missing frames are one run, ending
				// before the newest frame.
				first, last := missing[0], missing[len(missing)-1]
				if last-first+1 != uint64(len(missing)) {
					t.Errorf("missing frames %s are not one run of the oldest", ranges(missing))
				}
				if last >= produced {
					t.Errorf("the newest frame %d was dropped", last)
				}
			}
		})
	}
}

func dupCount(msgs []received) int {
	n := 0
	for _, m := range msgs {
		if m.dup {
			n++
		}
	}
	return n
}

// cameraIDs returns the frame ids of camera results on topic, skipping
// redeliveries the broker itself marked DUP (its own QoS 1 retry towards
// the subscriber across the restart, not a duplicate from the client).
func cameraIDs(t *testing.T, col *collector, topic string) []uint64 {
	t.Helper()
	var ids []uint64
	seen := map[uint64]bool{}
	for _, msg := range col.on(topic) {
		r := col.decode(t, msg)
		if r.Source != source.KindCamera {
			continue
		}
		if seen[r.FrameID] {
			if msg.dup {
				continue
			}
			t.Fatalf("frame %d delivered twice (not a broker redelivery)", r.FrameID)
		}
		seen[r.FrameID] = true
		ids = append(ids, r.FrameID)
	}
	return ids
}

func missingIDs(ids []uint64, produced uint64) []uint64 {
	have := map[uint64]bool{}
	for _, id := range ids {
		have[id] = true
	}
	var missing []uint64
	for i := uint64(1); i <= produced; i++ {
		if !have[i] {
			missing = append(missing, i)
		}
	}
	return missing
}

// TestBrokerDownAtStart starts the client before the broker: it keeps
// trying, reports why in Status, and connects once the broker is up.
func TestBrokerDownAtStart(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	m.Stop()
	c, _ := runClient(t, Config{Broker: m.URL()}, "early", &fakeClassifier{}, testLogger(t))
	waitFor(t, 20*time.Second, "a connection error", func() bool {
		return strings.Contains(c.Status().LastError, "connection refused")
	})
	if c.Status().Connected {
		t.Fatal("connected to a stopped broker")
	}
	m.Start()
	waitFor(t, 30*time.Second, "connection once the broker is up", connected(c))
	if got := mqtttest.Sub(t, m.Addr(), c.Topics().Availability); got != Online {
		t.Errorf("availability %q, want %q", got, Online)
	}
	if st := c.Status(); st.Reconnects != 0 {
		t.Errorf("Reconnects = %d, want 0: the first connection is not a reconnection", st.Reconnects)
	}
}

// ranges writes ids as "1-30 96-130".
func ranges(ids []uint64) string {
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if i == j {
			fmt.Fprint(&b, ids[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", ids[i], ids[j])
		}
		i = j + 1
	}
	return b.String()
}
