package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/status"
)

// fixedDaemon answers with a fixed status.
type fixedDaemon struct{ st Status }

func (d fixedDaemon) Status() Status                   { return d.st }
func (d fixedDaemon) Reload(ctx context.Context) error { return nil }
func (d fixedDaemon) Ready() error                     { return nil }

// TestPageWithoutPredictions: a result with no prediction left (every
// score under classify.threshold) renders, with empty label and score
// cells, beside one that has predictions.
func TestPageWithoutPredictions(t *testing.T) {
	now := time.Now()
	empty := edge.Result{Source: "camera", RequestID: "none", CapturedAt: now}
	full := edge.Result{Source: "http", RequestID: "one", CapturedAt: now,
		Predictions: []edge.Prediction{{Label: "peacock", Index: 85, Score: 0.98}}}
	st := Status{DeviceID: "dev", Stats: status.Snapshot{Last: &empty, Recent: []edge.Result{empty, full}}}
	reg := prometheus.NewRegistry()
	s, err := New(Config{}, nil, fixedDaemon{st}, status.NewRecorder(nil), reg, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d: %s", rec.Code, body)
	}
	page := string(body)
	if !strings.Contains(page, "<td>peacock</td><td>98.0%</td>") {
		t.Error("the result with a prediction lost its label or score cells")
	}
	if !strings.Contains(page, `<td class="small">none</td><td></td><td></td>`) {
		t.Error("the result without predictions does not have two empty cells")
	}
}
