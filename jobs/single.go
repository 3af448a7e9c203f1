package jobs

import (
	"fmt"
	"sync"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// Single is a read-only view of one job run outside a Manager (`mdp run`
// with metrics enabled, `mdp worker`), answering the same List and Status
// questions so `mdp list` and `mdp status` work against a plain run.
type Single struct {
	u    *runtime.Unified // nil for a scale-out role
	r    statusRun
	name string
	doc  *config.Document
	fp   string
	mu   sync.Mutex
	rate rateSample
}

// NewSingle returns the view of u.
func NewSingle(u *runtime.Unified) *Single {
	return &Single{u: u, r: u, name: u.Name(), doc: u.Document(), fp: u.Document().Fingerprint()}
}

// NewRole returns the view of a scale-out role's run (mdp worker, mdp run
// of a job with a scaleout section): its runtime status carries the
// scale-out section.
func NewRole(r *runtime.Role) *Single {
	return &Single{r: r, name: r.Name(), doc: r.Document(), fp: r.Document().Fingerprint()}
}

// Run returns the run, for the job's name; nil for another, and for a
// scale-out role (its taps are not recorded).
func (s *Single) Run(name string) *runtime.Unified {
	if name != s.name {
		return nil
	}
	return s.u
}

// List returns the one job's status without per-node detail.
func (s *Single) List() []JobStatus {
	st, _ := s.Status(s.name, false)
	return []JobStatus{st}
}

// Status returns the job's status; another name wraps ErrNotFound.
func (s *Single) Status(name string, detail bool) (JobStatus, error) {
	if name != s.name {
		what := "mdp run"
		if s.u == nil {
			what = "process"
		}
		return JobStatus{}, fmt.Errorf("job %q: %w (this %s runs %q)", name, ErrNotFound, what, s.name)
	}
	doc := s.doc
	st := JobStatus{Name: doc.Name, Mode: doc.Mode, Desired: DesiredRunning, Restart: doc.Restart, Fingerprint: s.fp}
	fillRun(&st, s.r, &s.mu, &s.rate, false, detail)
	rs := st.Runtime
	if rs == nil {
		r := s.r.Status()
		rs = &r
	}
	st.CreatedAt, st.StartedAt, st.StoppedAt = rs.StartedAt, rs.StartedAt, rs.EndedAt
	if err := s.r.Err(); err != nil {
		st.LastError = s.r.Redactor().Error(err)
	}
	return st, nil
}
