package mqtt

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// TestBadInputs sends what a classify topic may get besides images, with
// mosquitto_pub as the outside client: each gets an error with its
// request id, oversized ones never reach the classifier, and the client
// keeps answering.
func TestBadInputs(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	base := DefaultPrefix + "/bad"
	errTopic, predTopic, classify := base+"/errors", base+"/predictions", base+"/classify"
	col := newCollector(t, m.URL(), "test-bad-sub", false, errTopic, predTopic)
	// A retained request, there before the client subscribes, is sent to
	// it flagged retained, as it would be again on every reconnect.
	mqtttest.Pub(t, m.Addr(), classify+"/retained", "-r", "-m", "IMG:cat")
	fc := &fakeClassifier{}
	c, _ := runClient(t, Config{Broker: m.URL()}, "bad", fc, testLogger(t))
	waitFor(t, 20*time.Second, "connection", connected(c))
	if c.Topics().Classify != classify {
		t.Fatalf("classify topic %s, want %s", c.Topics().Classify, classify)
	}

	big := filepath.Join(t.TempDir(), "big.jpg")
	if err := os.WriteFile(big, make([]byte, 20<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		topic, requestID string
		args             []string
		want             string // in the error message
	}{
		{classify + "/empty", "empty", []string{"-n"}, "empty image"},
		{classify + "/text", "text", []string{"-m", "hello, not an image"}, "not an image"},
		{classify + "/big", "big", []string{"-f", big}, "image too large: 20971520 bytes, max_payload_bytes is 10485760"},
		{classify, "", []string{"-m", "IMG:no-id"}, "no request id"},
		{classify + "/", "", []string{"-m", "IMG:empty-id"}, "no request id"},
		{classify + "/boom", "boom", []string{"-m", "PANIC"}, "the classifier panicked: classifier bug"},
		{"", "retained", nil, "retained classify requests are refused"},
	}
	for _, tc := range cases {
		if tc.topic != "" {
			mqtttest.Pub(t, m.Addr(), tc.topic, tc.args...)
		}
	}
	waitFor(t, 30*time.Second, "an error per bad input", func() bool { return len(col.on(errTopic)) >= len(cases) })
	rejections := col.rejections(t, errTopic)
	for _, tc := range cases {
		found := false
		for i, r := range rejections {
			if r.RequestID == tc.requestID && strings.Contains(r.Error, tc.want) {
				if r.Source != "mqtt" || r.At.IsZero() {
					t.Errorf("rejection %+v: want source mqtt and a time", r)
				}
				rejections = append(rejections[:i], rejections[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no error with request id %q containing %q; got %+v", tc.requestID, tc.want, col.rejections(t, errTopic))
		}
	}
	if len(rejections) != 0 {
		t.Errorf("unexpected errors: %+v", rejections)
	}
	if n := fc.callsFor("big"); n != 0 {
		t.Errorf("the classifier saw the oversized image %d times", n)
	}
	if n := fc.callsFor("retained"); n != 0 {
		t.Errorf("the classifier saw the retained request %d times", n)
	}
	if n := fc.callsFor(""); n != 0 {
		t.Errorf("the classifier saw %d requests without an id", n)
	}

	// Still serving.
	mqtttest.Pub(t, m.Addr(), classify+"/good", "-m", "IMG:cat")
	waitFor(t, 20*time.Second, "the answer to a good request", func() bool { return len(col.on(predTopic)) == 1 })
	if r := col.results(t, predTopic)[0]; r.RequestID != "good" || r.Predictions[0].Label != "cat" {
		t.Errorf("prediction %+v", r)
	}
	if len(col.on(predTopic)) != 1 {
		t.Errorf("%d predictions, want 1", len(col.on(predTopic)))
	}
}

// TestClassifierRefuses covers a classifier that fails without handing
// the event to the sinks (the pipeline's ErrOverloaded): the client
// answers on the errors topic itself, exactly once.
func TestClassifierRefuses(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	fc := &fakeClassifier{refuse: errOverloadedForTest}
	c, _ := runClient(t, Config{Broker: m.URL()}, "refuse", fc, testLogger(t))
	waitFor(t, 20*time.Second, "connection", connected(c))
	col := newCollector(t, m.URL(), "test-refuse-sub", false, c.Topics().Errors)
	mqtttest.Pub(t, m.Addr(), c.Topics().Classify+"/r1", "-m", "IMG:x")
	waitFor(t, 20*time.Second, "the error", func() bool { return len(col.on(c.Topics().Errors)) >= 1 })
	time.Sleep(200 * time.Millisecond)
	got := col.rejections(t, c.Topics().Errors)
	if len(got) != 1 || got[0].RequestID != "r1" || got[0].Error != errOverloadedForTest.Error() {
		t.Errorf("errors %+v, want one for r1 saying %q", got, errOverloadedForTest)
	}
}

var errOverloadedForTest = errors.New("overloaded: too many requests in progress")

// TestOverloadQoS0 fills the classifier (inflight 1) and its queue with
// QoS 0 requests, which no broker window holds back: the one beyond is
// refused with an error, the others are answered.
func TestOverloadQoS0(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	release := make(chan struct{})
	fc := &fakeClassifier{block: func(source.Frame) { <-release }}
	c, _ := runClient(t, Config{Broker: m.URL(), Inflight: 1}, "busy", fc, testLogger(t))
	waitFor(t, 20*time.Second, "connection", connected(c))
	tp := c.Topics()
	col := newCollector(t, m.URL(), "test-busy-sub", false, tp.Errors, tp.Predictions)
	for i := range 3 {
		cmd := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port()), "-q", "0", "-t", tp.Classify+"/q"+strconv.Itoa(i), "-m", "IMG:x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v\n%s", err, out)
		}
	}
	waitFor(t, 20*time.Second, "one request refused", func() bool { return len(col.on(tp.Errors)) == 1 })
	close(release)
	waitFor(t, 20*time.Second, "two answers", func() bool { return len(col.on(tp.Predictions)) == 2 })
	if r := col.rejections(t, tp.Errors)[0]; !strings.Contains(r.Error, ErrOverloaded.Error()) {
		t.Errorf("error %+v, want overloaded", r)
	}
}
