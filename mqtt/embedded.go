package mqtt

import (
	"fmt"
	"log/slog"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Embedded is an in-process MQTT broker (mochi-mqtt) for single-box
// setups: one TCP listener, no authentication, no persistence. It accepts
// every client, so bind it to localhost unless the LAN is trusted.
type Embedded struct {
	srv  *mochi.Server
	addr string
	once sync.Once
}

// StartEmbedded starts a broker listening on addr (host:port; port 0
// picks a free one). log may be nil.
func StartEmbedded(addr string, log *slog.Logger) (*Embedded, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mochi.New(&mochi.Options{Logger: log.With("component", "mqtt-broker")})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "edgeinfer-tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: listen %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	return &Embedded{srv: srv, addr: tcp.Address()}, nil
}

// Addr is the address the broker listens on, with the actual port.
func (e *Embedded) Addr() string { return e.addr }

// Close disconnects every client, stops the listener and waits for the
// broker's goroutines. Calling it again does nothing.
func (e *Embedded) Close() error {
	var err error
	e.once.Do(func() { err = e.srv.Close() })
	return err
}
