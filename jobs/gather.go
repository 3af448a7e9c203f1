package jobs

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// childGatherer is the /metrics of a manager whose jobs run as child
// processes: the manager's own registry (runtime_up{mode="server"}, the Go
// and process collectors) merged with each child's metrics — scraped from
// its loopback listener while it runs, its final ones once it ended. A
// child's own runtime_up and its process-level families (go_*, process_*,
// promhttp_*, server_*) are left out: they describe the child process, not
// the job, and would collide with the server's. Series of the same name
// and labels from several children are summed, which is what makes
// runtime_jobs_running{mode} count across jobs; every other job series
// carries its job label and is unique.
type childGatherer struct{ m *Manager }

// scrapeTimeout bounds one child's scrape.
const scrapeTimeout = 3 * time.Second

func (g childGatherer) Gather() ([]*dto.MetricFamily, error) {
	own, err := g.m.reg.Gather()
	if err != nil {
		return nil, err
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range own {
		fams[f.GetName()] = f
	}
	var runs []*childRun
	g.m.mu.Lock()
	for _, j := range g.m.jobs {
		j.mu.Lock()
		if c, ok := j.u.(*childRun); ok {
			runs = append(runs, c)
		}
		j.mu.Unlock()
	}
	g.m.mu.Unlock()
	texts := make([]string, len(runs))
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, c := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := c.metricsText(ctx)
			if err != nil {
				g.m.log.Warn("metrics: a job's process did not answer; its series are missing from this scrape", "job", c.l.name, "err", err)
			}
			texts[i] = t
		}()
	}
	wg.Wait()
	for i, t := range texts {
		if t == "" {
			continue
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		parsed, err := p.TextToMetricFamilies(strings.NewReader(t))
		if err != nil {
			g.m.log.Warn("metrics: a job's process answered what does not parse", "job", runs[i].l.name, "err", err)
			continue
		}
		for name, f := range parsed {
			if childOnly(name) {
				continue
			}
			merge(fams, f)
		}
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		sort.Slice(f.Metric, func(a, b int) bool { return labelKey(f.Metric[a]) < labelKey(f.Metric[b]) })
		out = append(out, f)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].GetName() < out[b].GetName() })
	return out, nil
}

// childOnly reports whether a child's family describes the child process
// rather than its job.
func childOnly(name string) bool {
	if name == "runtime_up" {
		return true
	}
	for _, p := range []string{"go_", "process_", "promhttp_", "server_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// merge adds f's series to fams, summing a gauge, counter or untyped series
// whose labels are there already.
func merge(fams map[string]*dto.MetricFamily, f *dto.MetricFamily) {
	have := fams[f.GetName()]
	if have == nil {
		fams[f.GetName()] = f
		return
	}
	if have.GetType() != f.GetType() {
		return
	}
	idx := make(map[string]*dto.Metric, len(have.Metric))
	for _, m := range have.Metric {
		idx[labelKey(m)] = m
	}
	for _, m := range f.Metric {
		old := idx[labelKey(m)]
		switch {
		case old == nil:
			have.Metric = append(have.Metric, m)
			idx[labelKey(m)] = m
		case old.Gauge != nil && m.Gauge != nil:
			v := old.Gauge.GetValue() + m.Gauge.GetValue()
			old.Gauge.Value = &v
		case old.Counter != nil && m.Counter != nil:
			v := old.Counter.GetValue() + m.Counter.GetValue()
			old.Counter.Value = &v
		case old.Untyped != nil && m.Untyped != nil:
			v := old.Untyped.GetValue() + m.Untyped.GetValue()
			old.Untyped.Value = &v
		}
	}
}

func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.Label {
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}
