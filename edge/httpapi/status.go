package httpapi

import (
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/edge/status"
)

// Status is what GET /api/v1/status returns and the page shows.
type Status struct {
	DeviceID  string             `json:"device_id"`
	Version   string             `json:"version"`
	Engine    string             `json:"engine"`
	StartedAt time.Time          `json:"started_at"`
	UptimeS   float64            `json:"uptime_s"`
	Ready     bool               `json:"ready"`
	Health    string             `json:"health"`
	Model     ModelStatus        `json:"model"`
	Reload    ReloadStatus       `json:"reload"`
	Sources   []source.State     `json:"sources"`
	Stats     status.Snapshot    `json:"stats"`
	Queue     QueueStatus        `json:"queue"`
	MQTT      *edge.BrokerStatus `json:"mqtt,omitempty"`
}

// ModelStatus describes the model in use.
type ModelStatus struct {
	Name         string    `json:"name"`
	SHA256       string    `json:"sha256"`
	Path         string    `json:"path"`
	Input        string    `json:"input"`
	Delegate     string    `json:"delegate"`
	Threads      int       `json:"threads"`
	Interpreters int       `json:"interpreters"`
	LoadedAt     time.Time `json:"loaded_at"`
}

// ReloadStatus reports reloads.
type ReloadStatus struct {
	Count     uint64    `json:"count"`
	LastAt    time.Time `json:"last_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	ErrorAt   time.Time `json:"error_at,omitzero"`
}

// QueueStatus reports request admission.
type QueueStatus struct {
	Depth int `json:"depth"`
	Max   int `json:"max"`
}
