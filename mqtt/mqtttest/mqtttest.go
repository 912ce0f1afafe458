// Package mqtttest starts a real mosquitto broker, from Debian's package,
// for tests. It is in the spirit of periph's gpiotest, but the broker is
// not a fake: tests talk MQTT over TCP to a mosquitto process that runs
// on a free port of 127.0.0.1 and is stopped when the test ends. Pub and
// Sub run Debian's mosquitto_pub and mosquitto_sub as outside clients of
// any broker, this one or another.
//
// The package depends on nothing of edgeinfer's, so the internal tests of
// package mqtt can use it without an import cycle.
package mqtttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Broker is a mosquitto process run by a test.
type Broker struct {
	t    testing.TB
	port int
	conf string
	log  string
	cmd  *exec.Cmd
}

// Start runs mosquitto on a free port of 127.0.0.1 and stops it when t
// ends. Its config allows anonymous clients, limits packets to 32 MiB,
// queues up to 100,000 messages per client, logs errors, warnings and
// notices to a file of its own and keeps its database, if persistence is
// turned on, in a directory of the test's; the lines of extra are
// appended to it (for example "persistence true", or a second listener).
//
// Start skips the test if mosquitto is not installed; a test that must
// fail instead checks for it first.
func Start(t testing.TB, extra ...string) *Broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		t.Skip("mosquitto not installed (apt-get install mosquitto mosquitto-clients)")
	}
	dir := t.TempDir()
	b := &Broker{t: t, port: FreePort(t), conf: filepath.Join(dir, "mosquitto.conf"), log: filepath.Join(dir, "mosquitto.log")}
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", b.port),
		"allow_anonymous true",
		// Running as root, mosquitto would otherwise switch to the
		// mosquitto user, which cannot read the test's files.
		"user root",
		// mosquitto's default has no limit; 32 MiB makes the limit of
		// the tests that send 20 MB explicit.
		"max_packet_size 33554432",
		"max_queued_messages 100000",
		"log_type error",
		"log_type warning",
		"log_type notice",
		"log_dest file " + b.log,
		"persistence_location " + dir + "/",
	}
	lines = append(lines, extra...)
	if err := os.WriteFile(b.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop) // first: a Start that fails the test still stops it
	b.Start()
	return b
}

// URL is the broker's address as an MQTT client takes it:
// tcp://127.0.0.1:port.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// Port is the broker's TCP port.
func (b *Broker) Port() int { return b.port }

// Start starts the broker again after Stop, on the same port and with the
// same config. It returns once the broker listens, and fails the test if
// it does not within 10 s.
func (b *Broker) Start() {
	b.t.Helper()
	b.cmd = exec.Command("mosquitto", "-c", b.conf)
	// A test binary killed by -timeout runs no cleanups: the broker must
	// not outlive it.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(b.log)
			b.t.Fatalf("mosquitto did not listen on %s: %v\n%s", b.Addr(), err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the broker with SIGTERM, as systemd would: it closes the
// connections and saves its database. Stopping a stopped broker does
// nothing; the test's cleanup calls Stop.
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	_ = b.cmd.Wait()
	b.cmd = nil
}

// FreePort returns a TCP port of 127.0.0.1 that nothing listened on a
// moment ago, for a listener a test is about to start.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Pub publishes one message to topic at QoS 1 with mosquitto_pub, to the
// broker at addr (host:port), and fails the test if mosquitto_pub fails;
// args give the payload (-m TEXT, -n, -f FILE) and any other options
// (-r to retain).
func Pub(t testing.TB, addr, topic string, args ...string) {
	t.Helper()
	host, port := splitAddr(t, addr)
	cmd := exec.Command("mosquitto_pub", append([]string{"-h", host, "-p", port, "-q", "1", "-t", topic}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %s: %v\n%s", topic, err, out)
	}
}

// Sub returns the first message on topic of the broker at addr
// (host:port), as mosquitto_sub prints it, without the white space around
// it; a retained message arrives at once. It fails the test if no message
// comes within 10 s.
func Sub(t testing.TB, addr, topic string) string {
	t.Helper()
	host, port := splitAddr(t, addr)
	out, err := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-t", topic, "-C", "1", "-W", "10").Output()
	if err != nil {
		t.Fatalf("mosquitto_sub %s: %v", topic, err)
	}
	return strings.TrimSpace(string(out))
}

func splitAddr(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}
