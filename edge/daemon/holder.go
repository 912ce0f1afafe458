package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/httpapi"
)

// modelHolder is the model in use, swapped atomically on reload. A model
// is closed only after every classification that started on it has
// finished.
type modelHolder struct {
	mu      sync.RWMutex
	cur     *modelRef
	retired sync.WaitGroup // old models still being closed
}

type modelRef struct {
	m     Model
	users sync.WaitGroup
}

func newModelHolder(m Model) *modelHolder { return &modelHolder{cur: &modelRef{m: m}} }

func (h *modelHolder) acquire() *modelRef {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.cur
	// Added under the read lock: once swap holds the write lock, no new
	// user can join the old model, so its Wait cannot miss one.
	r.users.Add(1)
	return r
}

// Classify implements pipeline.Classifier.
func (h *modelHolder) Classify(ctx context.Context, data []byte) (edge.Result, error) {
	r := h.acquire()
	defer r.users.Done()
	return r.m.Classify(ctx, data)
}

func (h *modelHolder) info() httpapi.ModelStatus {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cur.m.Status()
}

// swap puts m in use and closes the old model in the background once its
// classifications in flight are done.
func (h *modelHolder) swap(m Model, log *slog.Logger) {
	h.mu.Lock()
	old := h.cur
	h.cur = &modelRef{m: m}
	h.mu.Unlock()
	h.retired.Add(1)
	go func() {
		defer h.retired.Done()
		old.users.Wait()
		if err := old.m.Close(); err != nil {
			log.Warn("closing the previous model", "err", err)
		}
	}()
}

// close closes the model in use after its users are done, and waits for
// retired models to be closed.
func (h *modelHolder) close() error {
	h.mu.Lock()
	r := h.cur
	h.mu.Unlock()
	r.users.Wait()
	err := r.m.Close()
	h.retired.Wait()
	return err
}
