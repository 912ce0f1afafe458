package mqtt

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// TestAvailability checks the retained "online" after start and the
// "offline" a clean exit publishes, with mosquitto_sub as the outside
// client.
func TestAvailability(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	c, stop := runClient(t, Config{Broker: m.URL()}, "avail", &fakeClassifier{}, testLogger(t))
	waitFor(t, 20*time.Second, "connection", connected(c))
	topic := c.Topics().Availability
	if got := mqtttest.Sub(t, m.Addr(), topic); got != Online {
		t.Fatalf("availability after start = %q, want %q", got, Online)
	}
	stop()
	if got := mqtttest.Sub(t, m.Addr(), topic); got != Offline {
		t.Fatalf("availability after Run returned = %q, want %q", got, Offline)
	}
	if st := c.Status(); st.Connected {
		t.Errorf("status after Run returned: %+v", st)
	}
}

// TestWillOnKill runs a client in a child process (the test binary
// itself), SIGKILLs it, and expects the broker to publish the Will.
func TestWillOnKill(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	const device = "killme"
	topic := DefaultPrefix + "/" + device + "/availability"
	col := newCollector(t, m.URL(), "test-will-sub", false, topic)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+m.URL(), helperDeviceEnv+"="+device)
	cmd.Stderr = tWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitFor(t, 30*time.Second, "online from the child", func() bool { return lastPayload(col.on(topic)) == Online })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, 30*time.Second, "the Will after SIGKILL", func() bool { return lastPayload(col.on(topic)) == Offline })
	if got := mqtttest.Sub(t, m.Addr(), topic); got != Offline {
		t.Errorf("retained availability after the kill = %q, want %q", got, Offline)
	}
}

func lastPayload(msgs []received) string {
	if len(msgs) == 0 {
		return ""
	}
	return string(msgs[len(msgs)-1].payload)
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestRedeliveryAfterKill kills a persistent-session client in the middle
// of a request; the next client with the same id gets the request again
// from the broker and answers it.
func TestRedeliveryAfterKill(t *testing.T) {
	leakCheck(t)
	m := mqtttest.Start(t)
	const device = "redeliver"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+m.URL(), helperDeviceEnv+"="+device, helperBlockEnv+"=1")
	cmd.Stderr = tWriter{t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines {
		}
		_ = cmd.Wait()
	})
	topic := DefaultPrefix + "/" + device
	col := newCollector(t, m.URL(), "test-redeliver-sub", false, topic+"/availability", topic+"/predictions")
	waitFor(t, 30*time.Second, "online from the child", func() bool { return lastPayload(col.on(topic+"/availability")) == Online })
	pub := outsidePublisher(t, m.URL())
	pub.Publish(topic+"/classify/r1", 1, false, "IMG:cat").Wait()
	select {
	case line := <-lines:
		if line != "classifying r1" {
			t.Fatalf("child said %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not get the request")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the Will", func() bool { return lastPayload(col.on(topic+"/availability")) == Offline })

	fc := &fakeClassifier{}
	runClient(t, Config{Broker: m.URL(), PersistentSession: true}, device, fc, testLogger(t))
	waitFor(t, 30*time.Second, "the redelivered request answered", func() bool { return len(col.on(topic+"/predictions")) == 1 })
	if r := col.results(t, topic+"/predictions")[0]; r.RequestID != "r1" || r.Predictions[0].Label != "cat" {
		t.Errorf("prediction %+v", r)
	}
	if n := fc.callsFor("r1"); n != 1 {
		t.Errorf("r1 classified %d times by the new client", n)
	}
}
