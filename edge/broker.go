package edge

import "time"

// BrokerStatus is the MQTT client's connection state: what package mqtt
// reports and the "mqtt" object of GET /api/v1/status. It lives here so
// that the HTTP side can show it without importing the MQTT client.
type BrokerStatus struct {
	// Broker is the broker URL with any password redacted.
	Broker string `json:"broker"`
	// Connected reports a live connection; Since is when it last changed.
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	// LastError is the most recent connection or publish failure.
	LastError string `json:"last_error,omitempty"`
	// Buffered counts predictions and errors not yet acknowledged by the
	// broker; Published those acknowledged; Dropped those given up
	// (buffer full, oldest first, or left over at shutdown). Every event
	// handed to Publish is in exactly one of the three.
	Buffered  int    `json:"buffered"`
	Published uint64 `json:"published"`
	Dropped   uint64 `json:"dropped"`
	// Reconnects counts connections after the first.
	Reconnects uint64 `json:"reconnects"`
}
