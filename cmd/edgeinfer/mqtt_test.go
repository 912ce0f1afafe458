package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// startMosquitto runs a real mosquitto (mqtttest.Start) without
// persistence; unlike mqtttest.Start, it fails the test rather than skip
// it if mosquitto is not installed.
func startMosquitto(t *testing.T) *mqtttest.Broker {
	t.Helper()
	requireTool(t, "mosquitto")
	return mqtttest.Start(t)
}

// subscriber collects messages from an outside paho client.
type subscriber struct {
	mu   sync.Mutex
	msgs map[string][][]byte // topic -> payloads in arrival order
	c    paho.Client
}

func subscribe(t *testing.T, broker, clientID string, clean bool, topics ...string) *subscriber {
	t.Helper()
	s := &subscriber{msgs: map[string][][]byte{}}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(clean).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(true)
	handler := func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		s.msgs[m.Topic()] = append(s.msgs[m.Topic()], append([]byte(nil), m.Payload()...))
		s.mu.Unlock()
	}
	opts.SetOnConnectHandler(func(c paho.Client) {
		for _, tp := range topics {
			c.Subscribe(tp, 1, handler)
		}
	})
	s.c = paho.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	time.Sleep(200 * time.Millisecond) // the subscription is made in the connect handler
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

func (s *subscriber) get(topic string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs[topic]...)
}

func mqttConfig(model, broker, device, extra string) string {
	return fmt.Sprintf("model: %s\ndevice_id: %s\nhttp:\n  listen: 127.0.0.1:0\nmqtt:\n  broker: %s\n%s", model, device, broker, extra)
}

func digit(t *testing.T, d int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mnistDir, "samples", strconv.Itoa(d)+".png"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMQTTThousandRequests publishes 1,000 MNIST digits to the classify
// topic at QoS 1 from a separate client and expects 1,000 results with
// the request ids and the right digits, none duplicated.
func TestMQTTThousandRequests(t *testing.T) {
	broker := startMosquitto(t)
	startDaemon(t, mqttConfig(absPath(t, mnistDir), broker.URL(), "dev1", ""))
	sub := subscribe(t, broker.URL(), "sub-1000", true, "edgeinfer/dev1/predictions", "edgeinfer/dev1/errors")

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("pub-1000"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	images := make([][]byte, 10)
	for d := range images {
		images[d] = digit(t, d)
	}
	for i := range 1000 {
		tok := pub.Publish(fmt.Sprintf("edgeinfer/dev1/classify/r-%d", i), 1, false, images[i%10])
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	eventually(t, 120*time.Second, "1000 predictions", func() bool { return len(sub.get("edgeinfer/dev1/predictions")) >= 1000 })
	time.Sleep(500 * time.Millisecond)
	seen := map[string]bool{}
	wrong := 0
	for _, p := range sub.get("edgeinfer/dev1/predictions") {
		var r edge.Result
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatalf("prediction is not a result: %s", p)
		}
		if seen[r.RequestID] {
			t.Errorf("duplicate result for %s", r.RequestID)
		}
		seen[r.RequestID] = true
		i, _ := strconv.Atoi(strings.TrimPrefix(r.RequestID, "r-"))
		if r.Source != "mqtt" || r.Predictions[0].Label != strconv.Itoa(i%10) {
			wrong++
		}
	}
	if len(seen) != 1000 || wrong != 0 {
		t.Errorf("%d distinct results, %d wrong", len(seen), wrong)
	}
	if e := sub.get("edgeinfer/dev1/errors"); len(e) != 0 {
		t.Errorf("errors: %s", e[0])
	}
}

// TestMQTTEmbeddedMosquittoClients runs the embedded broker and talks to
// it with Debian's mosquitto_pub and mosquitto_sub: peacocks in, results
// with their request ids out, availability retained.
func TestMQTTEmbeddedMosquittoClients(t *testing.T) {
	requireTool(t, "mosquitto_pub")
	port := mqtttest.FreePort(t)
	d := startDaemon(t, mqttConfig(absPath(t, mobilenetDir), "embedded", "emb", fmt.Sprintf("  embedded:\n    listen: 127.0.0.1:%d\n", port)))
	p := strconv.Itoa(port)
	addr := "127.0.0.1:" + p
	if got := mqtttest.Sub(t, addr, "edgeinfer/emb/availability"); got != "online" {
		t.Fatalf("availability: %q", got)
	}
	sub := exec.Command("timeout", "60", "mosquitto_sub", "-h", "127.0.0.1", "-p", p, "-q", "1", "-t", "edgeinfer/emb/predictions", "-C", "20")
	var got strings.Builder
	sub.Stdout = &got
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for i := range 20 {
		mqtttest.Pub(t, addr, fmt.Sprintf("edgeinfer/emb/classify/pk-%d", i), "-f", peacockPNG)
	}
	if err := sub.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v (got %q)", err, got.String())
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(got.String()), "\n") {
		var r edge.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if r.Predictions[0].Label != "peacock" {
			t.Errorf("%s: %s", r.RequestID, r.Predictions[0].Label)
		}
		ids[r.RequestID] = true
	}
	if len(ids) != 20 {
		t.Errorf("%d distinct request ids, want 20", len(ids))
	}
	if st := d.status(t); st.MQTT == nil || !st.MQTT.Connected || st.MQTT.Published < 20 {
		t.Errorf("status mqtt: %+v", st.MQTT)
	}
}

// TestMQTTWillOnSIGKILL: a killed daemon turns offline through its will;
// a restarted one turns online.
func TestMQTTWillOnSIGKILL(t *testing.T) {
	broker := startMosquitto(t)
	path := filepath.Join(t.TempDir(), "edgeinfer.yaml")
	os.WriteFile(path, []byte(mqttConfig(absPath(t, mnistDir), broker.URL(), "kill1", "  keepalive: 2s\n")), 0o644)
	sub := subscribe(t, broker.URL(), "sub-will", true, "edgeinfer/kill1/availability")
	last := func() string {
		m := sub.get("edgeinfer/kill1/availability")
		if len(m) == 0 {
			return ""
		}
		return string(m[len(m)-1])
	}
	d := startDaemonFile(t, path)
	eventually(t, 20*time.Second, "online", func() bool { return last() == "online" })
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	eventually(t, 20*time.Second, "offline (the will)", func() bool { return last() == "offline" })
	startDaemonFile(t, path)
	eventually(t, 20*time.Second, "online again", func() bool { return last() == "online" })
}

// TestMQTTBadInputs sends bad payloads to the classify topic: each gets an
// error message with its request id, and the daemon keeps serving with
// bounded memory.
func TestMQTTBadInputs(t *testing.T) {
	broker := startMosquitto(t)
	d := startDaemon(t, mqttConfig(absPath(t, mnistDir), broker.URL(), "bad1", ""))
	sub := subscribe(t, broker.URL(), "sub-bad", true, "edgeinfer/bad1/predictions", "edgeinfer/bad1/errors")
	jpg, _ := os.ReadFile(exampleJPG)
	bad := map[string][]byte{
		"empty":     {},
		"huge":      make([]byte, 20<<20),
		"text":      []byte("hello, not an image"),
		"truncated": jpg[:len(jpg)/2],
		"bomb":      hugePNG(50000, 50000),
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("pub-bad"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	for id, payload := range bad {
		tok := pub.Publish("edgeinfer/bad1/classify/"+id, 1, false, payload)
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", id, tok.Error())
		}
	}
	pub.Publish("edgeinfer/bad1/classify/good", 1, false, digit(t, 3)).WaitTimeout(10 * time.Second)
	eventually(t, 30*time.Second, "an error per bad input and the good result", func() bool {
		return len(sub.get("edgeinfer/bad1/errors")) >= len(bad) && len(sub.get("edgeinfer/bad1/predictions")) >= 1
	})
	got := map[string]string{}
	for _, p := range sub.get("edgeinfer/bad1/errors") {
		var rej edge.Rejection
		if err := json.Unmarshal(p, &rej); err != nil {
			t.Fatalf("error message %s: %v", p, err)
		}
		got[rej.RequestID] = rej.Error
	}
	for id := range bad {
		if got[id] == "" {
			t.Errorf("no error message for %s (got %v)", id, got)
		}
	}
	var r edge.Result
	json.Unmarshal(sub.get("edgeinfer/bad1/predictions")[0], &r)
	if r.RequestID != "good" || r.Predictions[0].Label != "3" {
		t.Errorf("good request after the bad ones: %+v", r)
	}
	if hwm := vmHWMKB(t, d.cmd.Process.Pid); hwm > 150<<10 {
		t.Errorf("daemon peak RSS %d MB after the bad inputs", hwm>>10)
	}
}

func vmHWMKB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestMQTTStateTopic: alternating top labels do not move the retained
// state; a stable change moves it exactly once.
func TestMQTTStateTopic(t *testing.T) {
	broker := startMosquitto(t)
	startDaemon(t, mqttConfig(absPath(t, mnistDir), broker.URL(), "st1", "  state:\n    min_frames: 3\n"))
	sub := subscribe(t, broker.URL(), "sub-state", true, "edgeinfer/st1/state", "edgeinfer/st1/predictions")
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("pub-state"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	send := func(n int, digits ...int) {
		for i, dg := range digits {
			pub.Publish(fmt.Sprintf("edgeinfer/st1/classify/s-%d-%d", n, i), 1, false, digit(t, dg)).WaitTimeout(10 * time.Second)
			// One at a time, so the results come in this order.
			want := n + i + 1
			eventually(t, 20*time.Second, fmt.Sprintf("result %d (have %d, states %d)", want, len(sub.get("edgeinfer/st1/predictions")), len(sub.get("edgeinfer/st1/state"))), func() bool { return len(sub.get("edgeinfer/st1/predictions")) >= want })
		}
	}
	send(0, 3, 3, 3) // establishes "3"
	eventually(t, 10*time.Second, "state 3", func() bool { return len(sub.get("edgeinfer/st1/state")) >= 1 })
	send(3, 7, 3, 7, 3, 7, 7, 3, 7) // flapping: never 3 consecutive 7s (8 results)
	time.Sleep(300 * time.Millisecond)
	states := sub.get("edgeinfer/st1/state")
	if len(states) != 1 {
		t.Fatalf("state moved while the label flapped: %d messages", len(states))
	}
	send(11, 7, 7, 7, 7, 7)
	eventually(t, 10*time.Second, "state 7", func() bool { return len(sub.get("edgeinfer/st1/state")) >= 2 })
	time.Sleep(300 * time.Millisecond)
	states = sub.get("edgeinfer/st1/state")
	var st struct{ Label string }
	json.Unmarshal(states[len(states)-1], &st)
	if len(states) != 2 || st.Label != "7" {
		t.Errorf("after a stable change: %d state messages, last %s", len(states), states[len(states)-1])
	}
}

// TestMQTTBrokerOutage stops the broker for 10 s during a 10 fps camera
// stream of 250 frames and starts it again. The daemon reconnects and
// resubscribes by itself; every frame is either delivered exactly once and
// in order, or counted as dropped: delivered + dropped = produced.
func TestMQTTBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	requireTool(t, "ffmpeg")
	// A persistent broker, as in production: after the restart it still
	// has the subscriber's session and redelivers what it had not seen
	// acknowledged, so at-least-once duplicates are allowed below (and
	// counted), reordering and loss are not.
	requireTool(t, "mosquitto")
	broker := mqtttest.Start(t, "persistence true")
	const frames = 250
	cfg := mqttConfig(absPath(t, mnistDir), broker.URL(), "out1", `  persistent_session: true
  keepalive: 2s
  buffer: 1000
cameras:
  - name: cam
    preset: command
    stall_timeout: 1h
    command: [sh, -c, "ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc=size=320x240:rate=10 -frames:v `+strconv.Itoa(frames)+` -c:v mjpeg -f mjpeg -; sleep 3600"]
`)
	d := startDaemon(t, cfg)
	sub := subscribe(t, broker.URL(), "sub-outage", false, "edgeinfer/out1/predictions")
	eventually(t, 30*time.Second, "first predictions", func() bool { return len(sub.get("edgeinfer/out1/predictions")) >= 20 })

	broker.Stop()
	time.Sleep(10 * time.Second)
	broker.Start()

	// Resubscribed without help: a classify request is answered.
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("pub-outage"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	eventually(t, 60*time.Second, "the whole stream", func() bool {
		return d.status(t).Sources[0].Frames >= frames
	})
	pub.Publish("edgeinfer/out1/classify/after-outage", 1, false, digit(t, 5)).WaitTimeout(10 * time.Second)

	var delivered []uint64
	afterOutage := false
	settled := func() bool {
		delivered, afterOutage = delivered[:0], false
		for _, p := range sub.get("edgeinfer/out1/predictions") {
			var r edge.Result
			if err := json.Unmarshal(p, &r); err != nil {
				t.Fatal(err)
			}
			if r.Source == "mqtt" {
				afterOutage = afterOutage || r.RequestID == "after-outage"
				continue
			}
			delivered = append(delivered, r.FrameID)
		}
		st := d.status(t)
		return afterOutage && st.MQTT != nil && st.MQTT.Buffered == 0
	}
	eventually(t, 60*time.Second, "buffer flushed and the request answered", settled)
	time.Sleep(time.Second)
	settled()
	// QoS 1 is at least once: a frame may arrive twice (the broker
	// redelivers what the subscriber had not acknowledged when it stopped;
	// one frame in every run here). New frames must still come in order,
	// and none may be missing (the count below).
	seen := map[uint64]bool{}
	unique, duplicates := delivered[:0:0], 0
	for _, id := range delivered {
		switch {
		case seen[id]:
			duplicates++
		case len(unique) > 0 && id < unique[len(unique)-1]:
			t.Fatalf("frame %d delivered after %d (out of order)", id, unique[len(unique)-1])
		default:
			seen[id] = true
			unique = append(unique, id)
		}
	}
	delivered = unique
	st := d.status(t)
	pipelineDropped := metric(t, d.base, `edgeinfer_frames_total{kind="camera",outcome="dropped",source="cam"}`)
	failed := metric(t, d.base, `edgeinfer_frames_total{kind="camera",outcome="rejected",source="cam"}`) +
		metric(t, d.base, `edgeinfer_frames_total{kind="camera",outcome="error",source="cam"}`)
	produced := st.Sources[0].Frames
	t.Logf("produced %d, delivered %d (and %d redelivered), dropped in the pipeline %v, failed %v, dropped by MQTT %d, reconnects %d",
		produced, len(delivered), duplicates, pipelineDropped, failed, st.MQTT.Dropped, st.MQTT.Reconnects)
	if st.MQTT.Reconnects < 1 {
		t.Error("no reconnect counted")
	}
	if got := uint64(len(delivered)) + uint64(pipelineDropped) + uint64(failed) + st.MQTT.Dropped; got != produced {
		t.Errorf("delivered + dropped = %d, produced %d", got, produced)
	}
}
