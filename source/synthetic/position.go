package synthetic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// positionVersion is the version of the source's checkpoint position.
const positionVersion = 1

// position is where a generator is: the records emitted, the random
// stream's state, the record index and every symbol's walking price.
type position struct {
	V       int     `json:"v"`
	Model   string  `json:"model"`
	Emitted int64   `json:"emitted"`
	RNG     uint64  `json:"rng"`
	I       int64   `json:"i"`
	Cents   []int64 `json:"cents"`
}

// Position implements engine.Seeker. It is called inside Emit, after the
// generator filled the batch being emitted.
func (s *Source) Position(int64) ([]byte, error) {
	p := position{V: positionVersion, Model: s.cfg.model, Emitted: s.emitted}
	switch {
	case s.rgen != nil:
		p.RNG, p.I, p.Cents = s.rgen.rng.s, s.rgen.i, s.rgen.cents
	case s.bgen != nil:
		p.RNG, p.I = s.bgen.rng.s, s.bgen.i
		p.Cents = make([]int64, len(s.bgen.sym))
		for k := range s.bgen.sym {
			p.Cents[k] = s.bgen.sym[k].cents
		}
	default:
		return nil, errors.New("provider.synthetic: no generator yet")
	}
	return json.Marshal(&p)
}

// Seek implements engine.Seeker: Run continues from pos.
func (s *Source) Seek(ctx context.Context, pos []byte) error {
	var p position
	if err := json.Unmarshal(pos, &p); err != nil {
		return fmt.Errorf("provider.synthetic: checkpoint position: %w", err)
	}
	if p.V != positionVersion {
		return fmt.Errorf("provider.synthetic: checkpoint position version %d; this mdp reads version %d", p.V, positionVersion)
	}
	if p.Model != s.cfg.model {
		return fmt.Errorf("provider.synthetic: the checkpoint was taken with model %s, the job has model %s", p.Model, s.cfg.model)
	}
	s.seekTo = &p
	return nil
}

// applySeek moves the generator Run just built to the position Seek got.
func (s *Source) applySeek() error {
	p := s.seekTo
	if p == nil {
		return nil
	}
	s.seekTo = nil
	s.emitted = p.Emitted
	switch {
	case s.rgen != nil:
		if len(p.Cents) != len(s.rgen.cents) {
			return fmt.Errorf("provider.synthetic: the checkpoint has %d symbols, the job %d", len(p.Cents), len(s.rgen.cents))
		}
		s.rgen.rng.s, s.rgen.i = p.RNG, p.I
		copy(s.rgen.cents, p.Cents)
		s.lastTS.Store(s.rgen.start + (p.I-1)*s.rgen.step)
	case s.bgen != nil:
		if len(p.Cents) != len(s.bgen.sym) {
			return fmt.Errorf("provider.synthetic: the checkpoint has %d symbols, the job %d", len(p.Cents), len(s.bgen.sym))
		}
		s.bgen.rng.s, s.bgen.i = p.RNG, p.I
		for k := range s.bgen.sym {
			s.bgen.sym[k].cents = p.Cents[k]
		}
		s.lastTS.Store(benchT0 + (p.I-1)*benchStep)
	}
	return nil
}

// Unbounded implements engine.Unbounded: model random without a count or a
// duration never ends by itself, so with checkpoints on a stop suspends it.
func (s *Source) Unbounded() bool { return s.cfg.unbounded }
