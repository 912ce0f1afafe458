package mqtttest

import "testing"

// TestBroker publishes a retained message, restarts the broker with
// persistence and reads the message back.
func TestBroker(t *testing.T) {
	b := Start(t, "persistence true")
	Pub(t, b.Addr(), "mqtttest/retained", "-r", "-m", "hello")
	if got := Sub(t, b.Addr(), "mqtttest/retained"); got != "hello" {
		t.Fatalf("Sub = %q, want hello", got)
	}
	b.Stop()
	b.Stop() // a second Stop does nothing
	b.Start()
	if got := Sub(t, b.Addr(), "mqtttest/retained"); got != "hello" {
		t.Fatalf("after a restart, Sub = %q, want hello", got)
	}
	if want := "tcp://" + b.Addr(); b.URL() != want {
		t.Errorf("URL = %q, want %q", b.URL(), want)
	}
}
