package tflite

import (
	"fmt"
	"strings"

	gotflite "github.com/mattn/go-tflite"
)

// TensorInfo describes one input or output tensor.
type TensorInfo struct {
	Name         string        `json:"name"`
	Type         string        `json:"type"`
	Shape        []int         `json:"shape"`
	Quantization *Quantization `json:"quantization,omitempty"`
}

// Quantization holds a tensor's per-tensor affine quantisation:
// real = Scale * (q - ZeroPoint).
type Quantization struct {
	Scale     float64 `json:"scale"`
	ZeroPoint int     `json:"zero_point"`
}

// Tasks Inspect recognises from a model's outputs.
const (
	TaskClassification = "classification"
	TaskDetection      = "detection"
	TaskUnknown        = "unknown"
)

// Info is what Inspect reports about a model.
type Info struct {
	SHA256       string       `json:"sha256"`
	SizeBytes    int          `json:"size_bytes"`
	Inputs       []TensorInfo `json:"inputs"`
	Outputs      []TensorInfo `json:"outputs"`
	Task         string       `json:"task"`
	NeedsEdgeTPU bool         `json:"needs_edgetpu"`
}

// Inspect reads the model's tensors. Tensors are allocated first when the
// model allows it, because some output shapes (SSD post-processing) are
// only known then; Edge TPU models cannot allocate without the
// accelerator, so they report the shapes stored in the model.
func (m *Model) Inspect() (Info, error) {
	it, err := m.newInterpreter(Options{Threads: 1, NoXNNPACK: true}, weightsCache{})
	if err != nil {
		return Info{}, err
	}
	defer it.Close()
	if !m.edge && it.it.AllocateTensors() != gotflite.OK {
		return Info{}, fmt.Errorf("tflite: allocate tensors: %w: %s", ErrInvalidModel, it.log.take())
	}
	return m.info(it), nil
}

// Info describes the model, as read from the pool's first interpreter when
// the pool was made (its tensors were allocated already: no extra
// interpreter is built). It stays valid after Close.
func (p *Pool) Info() Info { return p.info }

func (m *Model) info(it *Interpreter) Info {
	info := Info{SHA256: m.sha256, SizeBytes: m.size, NeedsEdgeTPU: m.edge}
	for k := 0; k < it.it.GetInputTensorCount(); k++ {
		if t := it.it.GetInputTensor(k); t != nil {
			info.Inputs = append(info.Inputs, tensorInfo(t))
		}
	}
	for k := 0; k < it.it.GetOutputTensorCount(); k++ {
		if t := it.it.GetOutputTensor(k); t != nil {
			info.Outputs = append(info.Outputs, tensorInfo(t))
		}
	}
	info.Task = guessTask(info.Outputs)
	return info
}

func tensorInfo(t *gotflite.Tensor) TensorInfo {
	ti := TensorInfo{Name: t.Name(), Type: strings.ToLower(t.Type().String()), Shape: make([]int, t.NumDims())}
	for d := range ti.Shape {
		ti.Shape[d] = t.Dim(d)
	}
	if q := t.QuantizationParams(); q.Scale != 0 {
		ti.Quantization = &Quantization{Scale: q.Scale, ZeroPoint: q.ZeroPoint}
	}
	return ti
}

// guessTask recognises the two output layouts edgeinfer serves: one score
// vector (classification) and the four tensors of TFLite's SSD
// post-processing op: boxes [1,N,4], classes [1,N], scores [1,N], count [1].
func guessTask(outs []TensorInfo) string {
	switch len(outs) {
	case 1:
		n := 0
		for _, d := range outs[0].Shape {
			if d > 1 {
				n++
			}
		}
		if n == 1 {
			return TaskClassification
		}
	case 4:
		s := outs[0].Shape
		if (len(s) == 3 && s[2] == 4 && len(outs[3].Shape) == 1) || strings.HasPrefix(outs[0].Name, "TFLite_Detection_PostProcess") {
			return TaskDetection
		}
	}
	return TaskUnknown
}
