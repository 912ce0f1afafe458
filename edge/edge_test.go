package edge

import (
	"encoding/json"
	"testing"
	"time"
)

// TestStagesMatchJSON: StageNames and Stages pair each stage's name with
// its own timing, as the JSON fields of Timings do.
func TestStagesMatchJSON(t *testing.T) {
	timings := Timings{
		Decode: Millis(1 * time.Millisecond), Preprocess: Millis(2 * time.Millisecond),
		Inference: Millis(3 * time.Millisecond), Postprocess: Millis(4 * time.Millisecond),
		Total: Millis(5 * time.Millisecond),
	}
	b, err := json.Marshal(timings)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]float64
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != NumStages {
		t.Fatalf("Timings has %d JSON fields, NumStages is %d", len(fields), NumStages)
	}
	names, stages := StageNames(), timings.Stages()
	for i, name := range names {
		if got, want := stages[i].Duration(), time.Duration(fields[name]*float64(time.Millisecond)); got != want {
			t.Errorf("stage %d %q: Stages gives %v, the JSON field %v", i, name, got, want)
		}
	}
}
