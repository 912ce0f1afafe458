package tflite

import (
	"context"
	"fmt"
	"sync"
)

// Pool lends interpreters of one model to one caller at a time, so that
// concurrent requests run in parallel without ever sharing an interpreter.
type Pool struct {
	model   *Model
	free    chan *Interpreter
	all     []*Interpreter
	weights weightsCache // deleted after all

	// Fixed when the pool is made (all interpreters are alike), so that
	// status requests read no C memory and work after Close.
	size       int
	info       Info
	delegation Delegation

	mu     sync.RWMutex // held for reading while an interpreter is lent
	closed bool
}

// NewPool makes n interpreters (at least one) for m.
func NewPool(m *Model, n int, opts Options) (*Pool, error) {
	var weights weightsCache
	if !opts.NoXNNPACK {
		weights = newWeightsCache()
	}
	return newPool(m, n, opts, weights)
}

// newPool is NewPool with the weights cache given; the pool owns it.
func newPool(m *Model, n int, opts Options, weights weightsCache) (*Pool, error) {
	n = max(n, 1)
	p := &Pool{model: m, free: make(chan *Interpreter, n), weights: weights}
	for range n {
		it, err := m.newAllocated(opts, p.weights)
		if err != nil {
			p.closeAll()
			return nil, err
		}
		p.all = append(p.all, it)
		p.free <- it
		if it.refused != "" && !opts.NoXNNPACK {
			// The others would be refused the same way. If this is the
			// first, nothing will use what the delegate packed before it
			// gave up; earlier interpreters' delegates use the cache.
			opts.NoXNNPACK = true
			if len(p.all) == 1 {
				p.weights.free()
			}
		}
	}
	if err := p.weights.finalize(); err != nil {
		p.closeAll()
		return nil, err
	}
	p.size, p.info, p.delegation = n, m.info(p.all[0]), p.all[0].Delegation()
	return p, nil
}

// Size is the number of interpreters in the pool.
func (p *Pool) Size() int { return p.size }

// Model is the model the pool runs.
func (p *Pool) Model() *Model { return p.model }

// Do waits for a free interpreter (or ctx), runs fn with it, and gives it
// back. fn must not keep the interpreter.
func (p *Pool) Do(ctx context.Context, fn func(*Interpreter) error) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return fmt.Errorf("tflite: pool: %w", ErrClosed)
	}
	defer p.mu.RUnlock()
	var it *Interpreter
	select {
	case it = <-p.free:
	case <-ctx.Done():
		return fmt.Errorf("tflite: waiting for an interpreter: %w", ctx.Err())
	}
	defer func() { p.free <- it }()
	return fn(it)
}

// Close waits for lent interpreters to come back and deletes them all.
// The model stays open: close it afterwards.
func (p *Pool) Close() error {
	p.mu.Lock() // waits for every Do in progress
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.closeAll()
	return nil
}

func (p *Pool) closeAll() {
	for _, it := range p.all {
		it.Close()
	}
	p.all = nil
	p.weights.free()
}

// Delegation says which delegate runs the model on the pool's
// interpreters (all are made alike).
func (p *Pool) Delegation() Delegation { return p.delegation }
