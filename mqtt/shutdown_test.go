package mqtt

import (
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// TestShutdownFlush ends Run right after a burst of results: what is
// buffered is flushed before "offline", in order, none twice.
func TestShutdownFlush(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	c, stop := runClient(t, Config{Broker: m.URL(), ShutdownTimeout: 10 * time.Second}, "flush", &fakeClassifier{}, testLogger(t))
	waitFor(t, 20*time.Second, "connection", connected(c))
	predictions, availability := c.Topics().Predictions, c.Topics().Availability
	col := newCollector(t, m.URL(), "test-flush-sub", false, predictions, availability)
	const produced = 500
	for i := uint64(1); i <= produced; i++ {
		c.Publish(pipeline.Event{
			Frame:  source.Frame{Kind: source.KindCamera, ID: i},
			Result: edge.Result{Source: source.KindCamera, FrameID: i, Predictions: []edge.Prediction{{Label: "cat"}}},
		})
	}
	stop()
	st := c.Status()
	waitFor(t, 20*time.Second, "the flushed results and offline", func() bool {
		return uint64(len(col.on(predictions)))+st.Dropped >= produced && lastPayload(col.on(availability)) == Offline
	})
	ids := cameraIDs(t, col, predictions)
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("frame %d after frame %d", ids[i], ids[i-1])
		}
	}
	if uint64(len(ids)) != produced || st.Dropped != 0 || st.Buffered != 0 {
		t.Errorf("delivered %d, status %+v; want all %d delivered by the flush", len(ids), st, produced)
	}
}

// TestShutdownAnswersRequests ends Run while a classify request is at the
// classifier: the request is answered before the client goes offline.
func TestShutdownAnswersRequests(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	fc := &fakeClassifier{block: func(source.Frame) {
		started <- struct{}{}
		<-release
	}}
	c, stop := runClient(t, Config{Broker: m.URL()}, "inprogress", fc, testLogger(t))
	waitFor(t, 20*time.Second, "connection", connected(c))
	predictions, availability := c.Topics().Predictions, c.Topics().Availability
	col := newCollector(t, m.URL(), "test-inprogress-sub", false, predictions, availability)
	mqtttest.Pub(t, m.Addr(), c.Topics().Classify+"/slow", "-m", "IMG:late")
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not reach the classifier")
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	time.Sleep(100 * time.Millisecond) // Run is now waiting for the request
	close(release)
	<-stopped
	waitFor(t, 20*time.Second, "offline", func() bool { return lastPayload(col.on(availability)) == Offline })
	got := col.results(t, predictions)
	if len(got) != 1 || got[0].RequestID != "slow" {
		t.Fatalf("predictions %+v, want the answer to the request in progress", got)
	}
}
