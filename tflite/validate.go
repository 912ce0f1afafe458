package tflite

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// validateStructure walks the parts of a .tflite flatbuffer that
// TensorFlow Lite's interpreter builder dereferences without checking, and
// rejects models that would crash it: the flatbuffer verifier only proves
// that offsets stay inside the buffer, not that a model has subgraphs or
// that its indices point at existing tensors, buffers and operator codes.
// Found by FuzzLoad: a model holding only a version number segfaults in
// TfLiteInterpreterCreate.
func validateStructure(data []byte) error {
	fb := flatbuf(data)
	root, err := fb.root()
	if err != nil {
		return err
	}
	opcodes, err := fb.tables(root, 1)
	if err != nil {
		return fmt.Errorf("operator_codes: %w", err)
	}
	subgraphs, err := fb.tables(root, 2)
	if err != nil {
		return fmt.Errorf("subgraphs: %w", err)
	}
	if len(subgraphs) == 0 {
		return errors.New("model has no subgraph")
	}
	buffers, err := fb.tables(root, 4)
	if err != nil {
		return fmt.Errorf("buffers: %w", err)
	}
	if len(buffers) == 0 {
		return errors.New("model has no buffers")
	}
	for _, op := range opcodes {
		if _, err := fb.table(op); err != nil {
			return fmt.Errorf("operator code: %w", err)
		}
	}
	for g, sg := range subgraphs {
		if err := fb.checkSubgraph(sg, len(opcodes), len(buffers)); err != nil {
			return fmt.Errorf("subgraph %d: %w", g, err)
		}
	}
	return nil
}

func (fb flatbuf) checkSubgraph(sg, nOpcodes, nBuffers int) error {
	tensors, err := fb.tables(sg, 0)
	if err != nil {
		return fmt.Errorf("tensors: %w", err)
	}
	n := len(tensors)
	for i, t := range tensors {
		if buf, ok, err := fb.scalarU32(t, 2); err != nil {
			return fmt.Errorf("tensor %d: %w", i, err)
		} else if ok && int(buf) >= nBuffers {
			return fmt.Errorf("tensor %d: buffer %d of %d", i, buf, nBuffers)
		}
		shape, err := fb.ints(t, 0, true)
		if err != nil {
			return fmt.Errorf("tensor %d: shape: %w", i, err)
		}
		for _, d := range shape {
			if d < -1 {
				return fmt.Errorf("tensor %d: dimension %d", i, d)
			}
		}
	}
	for _, tl := range tensorLists {
		field, name := tl.field, tl.name
		idx, err := fb.ints(sg, field, false)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, k := range idx {
			if k < 0 || int(k) >= n {
				return fmt.Errorf("%s: tensor %d of %d", name, k, n)
			}
		}
	}
	ops, err := fb.tables(sg, 3)
	if err != nil {
		return fmt.Errorf("operators: %w", err)
	}
	for i, op := range ops {
		code, _, err := fb.scalarU32(op, 0)
		if err != nil {
			return fmt.Errorf("operator %d: %w", i, err)
		}
		if int(code) >= nOpcodes {
			return fmt.Errorf("operator %d: opcode %d of %d", i, code, nOpcodes)
		}
		for _, tl := range tensorLists {
			field, name := tl.field, tl.name
			idx, err := fb.ints(op, field, true)
			if err != nil {
				return fmt.Errorf("operator %d %s: %w", i, name, err)
			}
			for _, k := range idx {
				if k < -1 || int(k) >= n {
					return fmt.Errorf("operator %d %s: tensor %d of %d", i, name, k, n)
				}
			}
		}
	}
	return nil
}

// flatbuf is a bounds-checked reader of the few flatbuffer constructs the
// TFLite schema uses here: tables, vectors of tables, vectors of int32.
type flatbuf []byte

var errBounds = errors.New("offset out of bounds")

func (fb flatbuf) u32(at int) (uint32, error) {
	if at < 0 || at+4 > len(fb) {
		return 0, errBounds
	}
	return binary.LittleEndian.Uint32(fb[at:]), nil
}

func (fb flatbuf) u16(at int) (uint16, error) {
	if at < 0 || at+2 > len(fb) {
		return 0, errBounds
	}
	return binary.LittleEndian.Uint16(fb[at:]), nil
}

func (fb flatbuf) root() (int, error) {
	off, err := fb.u32(0)
	if err != nil {
		return 0, err
	}
	return fb.table(int(off))
}

// table checks the table at pos and its vtable, and returns pos.
func (fb flatbuf) table(pos int) (int, error) {
	soff, err := fb.u32(pos)
	if err != nil {
		return 0, err
	}
	vt := pos - int(int32(soff))
	size, err := fb.u16(vt)
	if err != nil {
		return 0, err
	}
	if size < 4 || size%2 != 0 || vt+int(size) > len(fb) {
		return 0, errBounds
	}
	return pos, nil
}

// field returns the absolute position of field i of the table at pos, or
// 0 if the table does not have it.
func (fb flatbuf) field(pos, i int) (int, error) {
	soff, err := fb.u32(pos)
	if err != nil {
		return 0, err
	}
	vt := pos - int(int32(soff))
	size, err := fb.u16(vt)
	if err != nil {
		return 0, err
	}
	if 4+2*i >= int(size) {
		return 0, nil
	}
	off, err := fb.u16(vt + 4 + 2*i)
	if err != nil || off == 0 {
		return 0, err
	}
	return pos + int(off), nil
}

func (fb flatbuf) scalarU32(pos, i int) (uint32, bool, error) {
	at, err := fb.field(pos, i)
	if err != nil || at == 0 {
		return 0, false, err
	}
	v, err := fb.u32(at)
	return v, err == nil, err
}

// vector returns the start and length of the vector in field i, or
// ok=false if absent.
func (fb flatbuf) vector(pos, i, elem int) (start, n int, ok bool, err error) {
	at, err := fb.field(pos, i)
	if err != nil || at == 0 {
		return 0, 0, false, err
	}
	off, err := fb.u32(at)
	if err != nil {
		return 0, 0, false, err
	}
	vec := at + int(off)
	l, err := fb.u32(vec)
	if err != nil {
		return 0, 0, false, err
	}
	if int64(l)*int64(elem) > int64(len(fb)-vec-4) {
		return 0, 0, false, errBounds
	}
	return vec + 4, int(l), true, nil
}

// tables returns the positions of the tables in vector field i (a missing
// vector is an error: the model needs it).
func (fb flatbuf) tables(pos, i int) ([]int, error) {
	start, n, ok, err := fb.vector(pos, i, 4)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("missing")
	}
	out := make([]int, n)
	for k := range out {
		e := start + 4*k
		off, err := fb.u32(e)
		if err != nil {
			return nil, err
		}
		if out[k], err = fb.table(e + int(off)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ints returns the int32 vector in field i; a missing one is empty if
// optional, else an error.
func (fb flatbuf) ints(pos, i int, optional bool) ([]int32, error) {
	start, n, ok, err := fb.vector(pos, i, 4)
	if err != nil {
		return nil, err
	}
	if !ok {
		if optional {
			return nil, nil
		}
		return nil, errors.New("missing")
	}
	out := make([]int32, n)
	for k := range out {
		v, err := fb.u32(start + 4*k)
		if err != nil {
			return nil, err
		}
		out[k] = int32(v)
	}
	return out, nil
}

// tensorLists are the fields of a subgraph and of an operator that list
// tensor indices. Checked in this order, so that the first problem
// reported is always the same one (a map ranged in random order).
var tensorLists = [...]struct {
	field int
	name  string
}{{1, "inputs"}, {2, "outputs"}}
