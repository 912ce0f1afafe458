package mqtt

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// TestWebsocket connects over ws:// to a mochi broker with a websocket
// listener and answers a request.
func TestWebsocket(t *testing.T) {
	leakCheck(t)
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	if err := srv.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	broker := "ws://" + addr + "/mqtt"
	waitFor(t, 10*time.Second, "the websocket listener", func() bool {
		pc := outsidePublisherMaybe(broker)
		if pc == nil {
			return false
		}
		pc.Disconnect(0)
		return true
	})

	c, _ := runClient(t, Config{Broker: broker}, "ws", &fakeClassifier{}, testLogger(t))
	waitFor(t, 20*time.Second, "connection over websocket", connected(c))
	tp := c.Topics()
	col := newCollector(t, broker, "test-ws-sub", false, tp.Predictions)
	pub := outsidePublisher(t, broker)
	pub.Publish(tp.Classify+"/over-ws", 1, false, "IMG:ws").Wait()
	waitFor(t, 20*time.Second, "the answer over websocket", func() bool { return len(col.on(tp.Predictions)) == 1 })
}
