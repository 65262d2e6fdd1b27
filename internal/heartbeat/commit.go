package heartbeat

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/optralis/optralis/internal/db"
)

// GroupCommit configures group commit in a long-running server: heartbeats validated in
// their request goroutines are submitted to committers that write them in groups.
type GroupCommit struct {
	// MaxGroup bounds a group's size; 0: DefaultMaxGroup.
	MaxGroup int
	// Committers is how many groups may be in flight at once (database parallelism);
	// 0: DefaultCommitters.
	Committers int
}

// Defaults of GroupCommit.
const (
	DefaultMaxGroup   = 256
	DefaultCommitters = 4
)

// Committer groups heartbeats without waiting for a timer: a committer that is idle
// writes the first heartbeat it receives at once (a group of one); while its commit is in
// flight, arrivals queue and form its next group ("natural batching"), up to MaxGroup.
// A machine always goes to the same committer, so two groups in flight never share a
// machine's rows (no lock waits or deadlocks between them). Each Submit returns only
// after its group committed or failed.
type Committer struct {
	w      *Writer
	max    int
	queues []chan request
	quit   chan struct{}
	done   sync.WaitGroup
	once   sync.Once
}

type request struct {
	it  Item
	out chan Outcome // buffered: a committer never waits for a submitter
}

// NewCommitter starts the committers; Close stops them.
func NewCommitter(w *Writer, c GroupCommit) *Committer {
	if c.MaxGroup <= 0 {
		c.MaxGroup = DefaultMaxGroup
	}
	if c.Committers <= 0 {
		c.Committers = DefaultCommitters
	}
	gc := &Committer{w: w, max: c.MaxGroup, quit: make(chan struct{})}
	for range c.Committers {
		q := make(chan request, 4*c.MaxGroup)
		gc.queues = append(gc.queues, q)
		gc.done.Add(1)
		go gc.run(q)
	}
	return gc
}

// errStopping answers heartbeats submitted while the server stops: not written, retry.
var errStopping = fmt.Errorf("heartbeat: the server is stopping: %w", db.ErrUnavailable)

// Submit queues it and waits for its group's outcome. When ctx ends first the heartbeat
// may still be written (the agent's retry is idempotent).
func (c *Committer) Submit(ctx context.Context, it Item) Outcome {
	r := request{it: it, out: make(chan Outcome, 1)}
	h := fnv.New32a()
	_, _ = h.Write([]byte(it.MachineID))
	select {
	case c.queues[h.Sum32()%uint32(len(c.queues))] <- r:
	case <-c.quit:
		return Outcome{Err: errStopping}
	case <-ctx.Done():
		return Outcome{Err: ctx.Err()}
	}
	select {
	case o := <-r.out:
		return o
	case <-ctx.Done():
		return Outcome{Err: ctx.Err()}
	case <-c.quit:
		// Stopping: the committers finish their groups in flight and answer what is
		// still queued, so the answer is there once they are done.
		c.done.Wait()
		select {
		case o := <-r.out:
			return o
		default:
			return Outcome{Err: errStopping}
		}
	}
}

// run is one committer: block for the first request, take whatever else is already
// queued (up to max), write the group, answer each.
func (c *Committer) run(q chan request) {
	defer c.done.Done()
	// The group's writes must not depend on any one request's context (a client that
	// goes away does not cancel its neighbours' commit).
	ctx := context.Background()
	batch := make([]request, 0, c.max)
	items := make([]Item, 0, c.max)
	for {
		batch, items = batch[:0], items[:0]
		select {
		case r := <-q:
			batch = append(batch, r)
		case <-c.quit:
			c.drain(q)
			return
		}
	more:
		for len(batch) < c.max {
			select {
			case r := <-q:
				batch = append(batch, r)
			default:
				break more
			}
		}
		for _, r := range batch {
			items = append(items, r.it)
		}
		for i, o := range c.w.Write(ctx, items) {
			batch[i].out <- o
		}
	}
}

// drain answers what is still queued when the committers stop: not written.
func (c *Committer) drain(q chan request) {
	for {
		select {
		case r := <-q:
			r.out <- Outcome{Err: errStopping}
		default:
			return
		}
	}
}

// Close stops the committers after their groups in flight; later Submits get 503.
func (c *Committer) Close() {
	c.once.Do(func() { close(c.quit) })
	c.done.Wait()
}
