// Package tflite runs TensorFlow Lite models through the TFLite C API, over
// github.com/mattn/go-tflite. It is one of edgeinfer's two cgo leaf packages
// (the other is edge/jpegturbo).
//
// When the TensorFlow Lite library has the XNNPACK delegate (the fast
// engine, scripts/tflite-xnnpack.sh), interpreters hand the model to it
// unless Options.NoXNNPACK says otherwise, and report how many nodes it
// took; with Debian's prebuilt library they run TensorFlow Lite's own
// kernels. XNNPACK says which the process has.
//
// It loads models with a reason when TensorFlow Lite refuses one, inspects
// tensors, converts pixels into any of the usual input types, dequantises
// outputs as scale*(q-zero_point), and keeps a pool of interpreters so that
// concurrent callers never share one. C memory is released in the order
// TensorFlow Lite requires: interpreters, then the model, then the buffer
// the model was built from. The go-tflite pitfalls listed in DESIGN.md are
// handled here; see the comments where each one bites.
package tflite

/*
#include <tensorflow/lite/c/c_api.h>
*/
import "C"

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	gotflite "github.com/mattn/go-tflite"
)

// Errors callers may test for with errors.Is.
var (
	// ErrEmptyModel: the model file has no bytes.
	ErrEmptyModel = errors.New("model file is empty")
	// ErrModelTooLarge: the model file exceeds the load limit.
	ErrModelTooLarge = errors.New("model file too large")
	// ErrInvalidModel: the bytes are not a model TensorFlow Lite accepts
	// (truncated, corrupt, or not a .tflite flatbuffer at all).
	ErrInvalidModel = errors.New("not a valid TensorFlow Lite model")
	// ErrEdgeTPU: the model was compiled for the Coral Edge TPU and cannot
	// run on the CPU alone.
	ErrEdgeTPU = errors.New("model is compiled for the Edge TPU (edgetpu-custom-op): configure an Edge TPU delegate")
	// ErrModelInUse: Close was called while interpreters still use the model.
	ErrModelInUse = errors.New("model still has interpreters")
	// ErrClosed: the model or pool was closed.
	ErrClosed = errors.New("closed")
)

// DefaultMaxModelBytes bounds the size of a model file Load reads.
const DefaultMaxModelBytes = 512 << 20

// edgeTPUOp is the custom operator the Edge TPU compiler puts in a model.
const edgeTPUOp = "edgetpu-custom-op"

// Model is a loaded TensorFlow Lite model. It is safe for concurrent use;
// it must be closed after every interpreter made from it.
type Model struct {
	c      *C.TfLiteModel
	buf    unsafe.Pointer // the flatbuffer TFLite reads for the model's life
	log    errLog         // the model's reporter must outlive it too
	gm     *gotflite.Model
	sha256 string
	size   int
	edge   bool

	mu     sync.Mutex
	refs   int // live interpreters
	closed bool
}

// LoadFile reads and loads a model file of at most maxBytes bytes (0 means
// DefaultMaxModelBytes).
func LoadFile(path string, maxBytes int64) (*Model, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxModelBytes
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tflite: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tflite: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tflite: %s: %w: not a regular file", path, ErrInvalidModel)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("tflite: read %s: %w", path, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("tflite: %s: %w (limit %d bytes)", path, ErrModelTooLarge, maxBytes)
	}
	m, err := load(data)
	if err != nil {
		return nil, fmt.Errorf("tflite: %s: %w", path, err)
	}
	return m, nil
}

// Load builds a model from the bytes of a .tflite file. TensorFlow Lite
// verifies the flatbuffer; its complaint, if any, is part of the error.
func Load(data []byte) (*Model, error) {
	m, err := load(data)
	if err != nil {
		return nil, fmt.Errorf("tflite: %w", err)
	}
	return m, nil
}

func load(data []byte) (*Model, error) {
	if len(data) == 0 {
		return nil, ErrEmptyModel
	}
	// A .tflite flatbuffer carries the file identifier "TFL3" at offset 4.
	// Checking it first gives a plain answer for the common mistake of
	// pointing at the wrong file.
	if len(data) < 8 || string(data[4:8]) != "TFL3" {
		return nil, fmt.Errorf("%w: no TFL3 file identifier (%d bytes)", ErrInvalidModel, len(data))
	}
	if err := validateStructure(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	log := newErrLog()
	c, buf := createModel(data, log)
	if c == nil {
		msg := log.take()
		log.free()
		if msg == "" {
			msg = "flatbuffer verification failed"
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, msg)
	}
	sum := sha256.Sum256(data)
	return &Model{
		c:      c,
		buf:    buf,
		log:    log,
		gm:     wrapModel(c),
		sha256: hex.EncodeToString(sum[:]),
		size:   len(data),
		edge:   bytes.Contains(data, []byte(edgeTPUOp)),
	}, nil
}

// SHA256 is the hex sha256 of the model's bytes.
func (m *Model) SHA256() string { return m.sha256 }

// Size is the model's size in bytes.
func (m *Model) Size() int { return m.size }

// NeedsEdgeTPU reports whether the model contains Edge TPU operators.
func (m *Model) NeedsEdgeTPU() bool { return m.edge }

// acquire registers a new interpreter on the model.
func (m *Model) acquire() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("tflite: model: %w", ErrClosed)
	}
	m.refs++
	return nil
}

func (m *Model) release() {
	m.mu.Lock()
	m.refs--
	m.mu.Unlock()
}

// Close frees the model. It fails with ErrModelInUse while interpreters
// made from it are alive: TensorFlow Lite requires the model to outlive
// them. Closing twice is harmless (go-tflite's Delete is not idempotent).
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	if m.refs > 0 {
		return fmt.Errorf("tflite: %w (%d)", ErrModelInUse, m.refs)
	}
	m.closed = true
	deleteModel(m.c, m.buf)
	m.log.free()
	m.c, m.buf, m.gm = nil, nil, nil
	return nil
}

// Version is the TensorFlow Lite library's version string.
func Version() string { return C.GoString(C.TfLiteVersion()) }
