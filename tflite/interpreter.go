package tflite

import (
	"errors"
	"fmt"
	"unsafe"

	gotflite "github.com/mattn/go-tflite"
)

// ErrInput reports input that does not fit the model's input tensor.
var ErrInput = errors.New("input does not fit the model")

// Options configure an interpreter.
type Options struct {
	// Threads is the number of CPU threads one interpreter may use; 0 or
	// less leaves the choice to TensorFlow Lite.
	Threads int
	// NoXNNPACK keeps the XNNPACK delegate out even when the library has
	// it, so TensorFlow Lite's own kernels run every node.
	NoXNNPACK bool
}

// Interpreter runs one model. It is not safe for concurrent use (neither
// is TensorFlow Lite's); Pool hands interpreters to one caller at a time.
type Interpreter struct {
	model *Model
	it    *gotflite.Interpreter
	log   errLog
	dg    delegates // deleted after it
	inv   *invoker  // runs Invoke; stopped before it is deleted
	// refused is why the XNNPACK delegate could not take the model, when
	// the interpreter fell back to TensorFlow Lite's own kernels.
	refused string
	in      *gotflite.Tensor
	outs    []*gotflite.Tensor

	// lut caches the pixel conversion for the last Normalization used.
	lut     pixelLUT
	lutNorm Normalization
	lutOK   bool
}

// NewInterpreter makes an interpreter for m and allocates its tensors.
func (m *Model) NewInterpreter(opts Options) (*Interpreter, error) {
	return m.newAllocated(opts, weightsCache{})
}

// newAllocated is NewInterpreter with XNNPACK's packed weights kept in wc
// (a pool's shared cache) when it is not the zero value.
func (m *Model) newAllocated(opts Options, wc weightsCache) (*Interpreter, error) {
	if m.edge {
		return nil, fmt.Errorf("tflite: %w", ErrEdgeTPU)
	}
	it, err := m.newInterpreter(opts, wc)
	if err != nil {
		return nil, err
	}
	if s := it.it.AllocateTensors(); s != gotflite.OK {
		msg := it.log.take()
		it.Close()
		return nil, fmt.Errorf("tflite: allocate tensors: %w: %s", ErrInvalidModel, msg)
	}
	if err := it.bindTensors(); err != nil {
		it.Close()
		return nil, err
	}
	if it.inv, err = newInvoker(it.it); err != nil {
		it.Close()
		return nil, err
	}
	return it, nil
}

// newInterpreter creates an interpreter without allocating tensors, which
// is enough to read tensor names, types and shapes. If the XNNPACK
// delegate makes creation fail (TensorFlow Lite gives up on the whole
// interpreter when a delegate fails to prepare), it tries again on
// TensorFlow Lite's own kernels and records why in the Delegation.
func (m *Model) newInterpreter(opts Options, wc weightsCache) (*Interpreter, error) {
	if err := m.acquire(); err != nil {
		return nil, err
	}
	xnnpack := !opts.NoXNNPACK && XNNPACK()
	it, reason, err := m.create(opts, wc, xnnpack)
	if it == nil && xnnpack {
		if err != nil {
			reason = err.Error()
		}
		var cpuReason string
		if it, cpuReason, err = m.create(opts, wc, false); it != nil {
			it.refused = nonEmpty(reason, "no reason given")
		} else {
			// Failing without the delegate too is the model's own fault:
			// say that, not the delegate's part.
			reason = nonEmpty(cpuReason, reason)
		}
	}
	if it == nil && err == nil {
		err = fmt.Errorf("tflite: create interpreter: %w: %s", ErrInvalidModel, nonEmpty(reason, "no reason given"))
	}
	if err != nil {
		m.release()
		return nil, err
	}
	return it, nil
}

// create makes one interpreter, with the XNNPACK delegate or without. When
// TensorFlow Lite will not create it, it returns nil and TensorFlow Lite's
// message; err is for everything else.
func (m *Model) create(opts Options, wc weightsCache, xnnpack bool) (*Interpreter, string, error) {
	o := gotflite.NewInterpreterOptions()
	if o == nil {
		return nil, "", errors.New("tflite: cannot create interpreter options")
	}
	// The options may be deleted once the interpreter exists (c_api.h);
	// the error log may not: the interpreter reports into it for life.
	defer o.Delete()
	if opts.Threads > 0 {
		o.SetNumThread(opts.Threads)
	}
	var dg delegates
	if xnnpack {
		var err error
		if dg, err = addXNNPACK(o, max(opts.Threads, 1), wc.c); err != nil {
			return nil, "", err
		}
	}
	log := newErrLog()
	setReporter(o, log)
	it := gotflite.NewInterpreter(m.gm, o)
	if it == nil {
		msg := log.take()
		log.free()
		dg.free()
		return nil, msg, nil
	}
	return &Interpreter{model: m, it: it, log: log, dg: dg}, "", nil
}

// Delegation says which delegate runs the model's nodes on this
// interpreter, and how many of them.
func (i *Interpreter) Delegation() Delegation {
	d := i.dg.delegation()
	d.Refused = i.refused
	return d
}

func (i *Interpreter) bindTensors() error {
	if n := i.it.GetInputTensorCount(); n != 1 {
		return fmt.Errorf("tflite: %w: model has %d inputs, edgeinfer feeds exactly one image", ErrInput, n)
	}
	i.in = i.it.GetInputTensor(0)
	n := i.it.GetOutputTensorCount()
	if i.in == nil || n < 1 {
		return fmt.Errorf("tflite: %w: model has no usable input or output tensor", ErrInvalidModel)
	}
	i.outs = make([]*gotflite.Tensor, n)
	for k := range i.outs {
		if i.outs[k] = i.it.GetOutputTensor(k); i.outs[k] == nil {
			return fmt.Errorf("tflite: %w: output %d missing", ErrInvalidModel, k)
		}
	}
	return nil
}

// Input describes the input tensor.
func (i *Interpreter) Input() TensorInfo { return tensorInfo(i.in) }

// Outputs describes the output tensors.
func (i *Interpreter) Outputs() []TensorInfo {
	infos := make([]TensorInfo, len(i.outs))
	for k, t := range i.outs {
		infos[k] = tensorInfo(t)
	}
	return infos
}

// SetPixels fills the input tensor from 8-bit pixels laid out as the
// tensor is (HWC, or a flat vector), converting each value as norm says.
// len(pixels) must equal the tensor's element count: go-tflite's copy
// helpers trust the tensor's size, not the slice's, so this is checked
// before any byte is written.
func (i *Interpreter) SetPixels(pixels []byte, norm Normalization) error {
	t := i.in
	n := elements(t)
	if len(pixels) != n {
		return fmt.Errorf("tflite: %w: %d values for an input of %d", ErrInput, len(pixels), n)
	}
	typ := t.Type()
	if !i.lutOK || i.lutNorm != norm {
		lut, err := newPixelLUT(typ, t.QuantizationParams(), norm)
		if err != nil {
			return err
		}
		i.lut, i.lutNorm, i.lutOK = lut, norm, true
	}
	data := t.Data()
	if data == nil || int(t.ByteSize()) != n*typeSize(typ) {
		return fmt.Errorf("tflite: %w: input tensor has %d bytes for %d %s values", ErrInput, t.ByteSize(), n, typ)
	}
	switch typ {
	case gotflite.UInt8, gotflite.Int8:
		dst := unsafe.Slice((*byte)(data), n)
		if i.lut.identity {
			copy(dst, pixels)
			break
		}
		for k, p := range pixels {
			dst[k] = i.lut.q[p]
		}
	case gotflite.Float32:
		dst := unsafe.Slice((*float32)(data), n)
		for k, p := range pixels {
			dst[k] = i.lut.f[p]
		}
	}
	return nil
}

// Invoke runs the model on the current input, on the interpreter's own
// inference thread (see invoker).
func (i *Interpreter) Invoke() error {
	if i.inv == nil {
		return fmt.Errorf("tflite: interpreter: %w", ErrClosed)
	}
	if s := i.inv.invoke(); s != gotflite.OK { // never compare with gotflite.Error: it equals OK
		return fmt.Errorf("tflite: invoke: %s", nonEmpty(i.log.take(), s.String()))
	}
	return nil
}

// Scores reads output k as real numbers, dequantised as
// scale*(q-zero_point), into dst (grown if needed) and returns it.
func (i *Interpreter) Scores(k int, dst []float32) ([]float32, error) {
	if k < 0 || k >= len(i.outs) {
		return nil, fmt.Errorf("tflite: output %d of %d", k, len(i.outs))
	}
	t := i.outs[k]
	n := elements(t)
	typ := t.Type()
	data := t.Data()
	if data == nil || int(t.ByteSize()) < n*typeSize(typ) {
		return nil, fmt.Errorf("tflite: output %d: no data", k)
	}
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	q := t.QuantizationParams()
	switch typ {
	case gotflite.Float32:
		copy(dst, unsafe.Slice((*float32)(data), n))
	case gotflite.UInt8:
		if q.Scale == 0 {
			return nil, fmt.Errorf("tflite: output %d is uint8 without quantisation parameters", k)
		}
		dequantizeUint8(dst, unsafe.Slice((*uint8)(data), n), q)
	case gotflite.Int8:
		if q.Scale == 0 {
			return nil, fmt.Errorf("tflite: output %d is int8 without quantisation parameters", k)
		}
		dequantizeInt8(dst, unsafe.Slice((*int8)(data), n), q)
	default:
		return nil, fmt.Errorf("tflite: output %d has type %s; scores need float32, uint8 or int8", k, typ)
	}
	return dst, nil
}

// Close deletes the interpreter. It is safe to call twice.
func (i *Interpreter) Close() {
	if i.it == nil {
		return
	}
	i.inv.free()
	i.it.Delete()
	i.dg.free() // the interpreter may use its delegates until deleted
	i.log.free()
	i.it, i.inv, i.in, i.outs = nil, nil, nil, nil
	i.model.release()
}

func elements(t *gotflite.Tensor) int {
	n := 1
	for d := 0; d < t.NumDims(); d++ {
		n *= t.Dim(d)
	}
	return n
}

func typeSize(t gotflite.TensorType) int {
	switch t {
	case gotflite.UInt8, gotflite.Int8, gotflite.Bool:
		return 1
	case gotflite.Int16:
		return 2
	case gotflite.Float32, gotflite.Int32:
		return 4
	case gotflite.Int64, gotflite.Complex64:
		return 8
	}
	return 0
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
