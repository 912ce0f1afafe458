package daemon

import (
	"slices"
	"testing"

	"github.com/edgeinfer/edgeinfer/edge/config"
)

// TestRestartOnlyChanges: what a reload applies (model, labels, engine,
// classify) is not reported; everything else that changed is, MQTT
// included.
func TestRestartOnlyChanges(t *testing.T) {
	old := config.Defaults()
	old.Model = "a"
	cur := old
	cur.Model, cur.Engine.Threads, cur.Classify.Top = "b", 2, 3
	if keys := restartOnlyChanges(old, cur); len(keys) != 0 {
		t.Errorf("live changes reported as needing a restart: %v", keys)
	}
	cur.MQTT.Broker = "tcp://broker:1883"
	cur.HTTP.Listen = ":9090"
	if keys := restartOnlyChanges(old, cur); !slices.Equal(keys, []string{"http", "mqtt"}) {
		t.Errorf("restartOnlyChanges = %v, want [http mqtt]", keys)
	}
}
