// Package edge holds the types every part of edgeinfer shares: the result
// of classifying one image, in the one JSON shape the CLI, the HTTP API and
// MQTT all publish (see DESIGN.md, "Contracts").
//
// Sub-packages hold one concern each: edge/imageio decodes untrusted images,
// edge/model reads model manifests, edge/classify runs decode, resize,
// inference and post-processing for one image. None of them import the
// cgo engine (tflite) or the MQTT client; cmd/edgeinfer wires those in.
package edge

import (
	"fmt"
	"strconv"
	"time"
)

// Result is what edgeinfer reports for one classified image.
type Result struct {
	DeviceID    string       `json:"device_id"`
	Source      string       `json:"source"`
	RequestID   string       `json:"request_id"`
	FrameID     uint64       `json:"frame_id"`
	CapturedAt  time.Time    `json:"captured_at"`
	Model       ModelRef     `json:"model"`
	Predictions []Prediction `json:"predictions"`
	Timings     Timings      `json:"timings_ms"`
}

// ModelRef names the model that produced a result.
type ModelRef struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// Prediction is one class with its probability.
type Prediction struct {
	Label string  `json:"label"`
	Index int     `json:"index"`
	Score float32 `json:"score"`
}

// Timings splits the time spent on one image by stage, in milliseconds.
// Preprocess covers resizing and filling the input tensor; Postprocess
// covers reading and dequantising the output and selecting the top classes.
type Timings struct {
	Decode      Millis `json:"decode"`
	Preprocess  Millis `json:"preprocess"`
	Inference   Millis `json:"inference"`
	Postprocess Millis `json:"postprocess"`
	Total       Millis `json:"total"`
}

// NumStages is the number of stages in Timings.
const NumStages = 5

// StageNames names the stages of Timings, in the order of Stages: the
// names of their JSON fields, and the stage labels of the metrics and the
// status page.
func StageNames() [NumStages]string {
	return [...]string{"decode", "preprocess", "inference", "postprocess", "total"}
}

// Stages returns the timings in the order of StageNames.
func (t Timings) Stages() [NumStages]Millis {
	return [...]Millis{t.Decode, t.Preprocess, t.Inference, t.Postprocess, t.Total}
}

// Millis is a duration that encodes to JSON as fractional milliseconds,
// rounded to microseconds.
type Millis time.Duration

// MarshalJSON encodes m as a number of milliseconds with up to 3 decimals.
func (m Millis) MarshalJSON() ([]byte, error) {
	us := time.Duration(m).Microseconds()
	return strconv.AppendFloat(nil, float64(us)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads a number of milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("edge: milliseconds: %w", err)
	}
	*m = Millis(time.Duration(f * float64(time.Millisecond)))
	return nil
}

// Duration returns m as a time.Duration.
func (m Millis) Duration() time.Duration { return time.Duration(m) }

// Ms returns m in milliseconds as a float, for logs and benchmarks.
func (m Millis) Ms() float64 { return float64(time.Duration(m).Microseconds()) / 1000 }

// Rejection reports an input that could not be classified, in the shape
// of the MQTT errors topic: {"request_id","source","error"}.
type Rejection struct {
	RequestID string    `json:"request_id"`
	Source    string    `json:"source"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
}
