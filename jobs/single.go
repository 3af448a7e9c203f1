package jobs

import (
	"fmt"
	"sync"

	"github.com/mdpio/mdp/runtime"
)

// Single is a read-only view of one job run outside a Manager (`mdp run`
// with metrics enabled), answering the same List and Status questions so
// `mdp list` and `mdp status` work against a plain run.
type Single struct {
	u    *runtime.Unified
	fp   string
	mu   sync.Mutex
	rate rateSample
}

// NewSingle returns the view of u.
func NewSingle(u *runtime.Unified) *Single { return &Single{u: u, fp: u.Document().Fingerprint()} }

// Run returns the run, for the job's name; nil for another.
func (s *Single) Run(name string) *runtime.Unified {
	if name != s.u.Name() {
		return nil
	}
	return s.u
}

// List returns the one job's status without per-node detail.
func (s *Single) List() []JobStatus {
	st, _ := s.Status(s.u.Name(), false)
	return []JobStatus{st}
}

// Status returns the job's status; another name wraps ErrNotFound.
func (s *Single) Status(name string, detail bool) (JobStatus, error) {
	if name != s.u.Name() {
		return JobStatus{}, fmt.Errorf("job %q: %w (this mdp run runs %q)", name, ErrNotFound, s.u.Name())
	}
	doc := s.u.Document()
	st := JobStatus{Name: doc.Name, Mode: doc.Mode, Desired: DesiredRunning, Restart: doc.Restart, Fingerprint: s.fp}
	fillRun(&st, s.u, &s.mu, &s.rate, false, detail)
	rs := st.Runtime
	if rs == nil {
		r := s.u.Status()
		rs = &r
	}
	st.CreatedAt, st.StartedAt, st.StoppedAt = rs.StartedAt, rs.StartedAt, rs.EndedAt
	if err := s.u.Err(); err != nil {
		st.LastError = s.u.Redactor().Error(err)
	}
	return st, nil
}
