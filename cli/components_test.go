package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/cli"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Components the CLI tests register, so they do not depend on the built-in
// ones. They are compiled into the test binary, which the subprocess tests
// run as mdp (see TestMain).

const baseTS = int64(1_700_000_000) * 1e9

type cliSource struct {
	count, batch int
	interval     time.Duration
	hold         bool
}

func (s *cliSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "AAA")
	for i := 0; i < s.count; {
		b := out.NewBatch(md.KindTrade)
		for k := 0; k < s.batch && i < s.count; k++ {
			b.Trades = append(b.Trades, md.Trade{TS: baseTS + int64(i)*1e6, Price: 100, Size: 1, Sym: sym})
			i++
		}
		if err := out.Emit(b); err != nil {
			return err
		}
		if s.interval > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(s.interval):
			}
		}
	}
	if s.hold {
		<-ctx.Done()
	}
	return nil
}

type cliPass struct{}

func (cliPass) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.Emit(b)
}

// cliSink counts records and, on Close, writes "records N" to path.
type cliSink struct {
	path      string
	records   int
	batches   int
	failOn    int
	closeWait bool
	openErr   string
	password  string
	dsn       string
	panicIn   string // a method that panics: Open, Process, Close, Cleanup
}

func (s *cliSink) maybePanic(method string) {
	if s.panicIn == method {
		panic("test panic in " + method)
	}
}

func (s *cliSink) Cleanup(ctx context.Context) error {
	s.maybePanic("Cleanup")
	return nil
}

func (s *cliSink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.maybePanic("Open")
	if s.openErr != "" {
		return fmt.Errorf("%s (dsn %s)", s.openErr, s.dsn)
	}
	return nil
}

func (s *cliSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.maybePanic("Process")
	s.records += b.Len()
	s.batches++
	if s.failOn > 0 && s.batches == s.failOn {
		return fmt.Errorf("write to %s failed: password %s rejected", s.dsn, s.password)
	}
	return nil
}

func (s *cliSink) Close(ctx context.Context, out *engine.Output) error {
	s.maybePanic("Close")
	if s.closeWait {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.path == "" {
		return nil
	}
	return os.WriteFile(s.path, []byte(fmt.Sprintf("records %d\n", s.records)), 0o644)
}

func init() {
	component.Register(component.Spec{
		Type: "provider.test_cli_src", Kind: engine.KindSource, Summary: "CLI test trades", Produces: md.KindTrade,
		Fields: []component.Field{
			{Name: "count", Type: component.Int, Default: 10, Min: component.Bound(0), Description: "trades to emit"},
			{Name: "batch", Type: component.Int, Default: 10, Min: component.Bound(1), Description: "trades per batch"},
			{Name: "interval", Type: component.Duration, Default: "0s", Description: "pause after each batch"},
			{Name: "hold", Type: component.Bool, Default: false, Description: "after the last trade, wait for a stop"},
		},
		NewSource: func(p *component.Params, _ int) (engine.Source, error) {
			return &cliSource{count: int(p.Int("count")), batch: int(p.Int("batch")), interval: p.Duration("interval"), hold: p.Bool("hold")}, nil
		},
	})
	component.Register(component.Spec{
		Type: "operator.test_cli_pass", Kind: engine.KindOperator, Summary: "CLI test pass-through",
		Accepts: md.KindTrade | md.KindQuote, Produces: engine.SameAsInput,
		Ports:        map[string]md.Kind{engine.PortLate: engine.SameAsInput},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) { return cliPass{}, nil },
	})
	component.Register(component.Spec{
		Type: "sink.test_cli_sink", Kind: engine.KindSink, Summary: "CLI test sink", Accepts: md.KindAny,
		Fields: []component.Field{
			{Name: "path", Type: component.String, Description: "file that receives the record count on close"},
			{Name: "fail_on", Type: component.Int, Default: 0, Min: component.Bound(0), Description: "fail on this batch (1-based); 0 never"},
			{Name: "close_wait", Type: component.Bool, Default: false, Description: "block in Close until aborted"},
			{Name: "open_error", Type: component.String, Description: "fail Open with this message"},
			{Name: "password", Type: component.String, Secret: true, Description: "a secret"},
			{Name: "dsn", Type: component.String, Description: "a DSN that may hold a password"},
			{Name: "mode", Type: component.String, Default: "upsert", Enum: []string{"insert", "upsert"}, Description: "write mode"},
			{Name: "ratio", Type: component.Float, Min: component.Bound(0), Max: component.Bound(1), Description: "a fraction"},
		},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			return &cliSink{
				path: p.String("path"), failOn: int(p.Int("fail_on")), closeWait: p.Bool("close_wait"),
				openErr: p.String("open_error"), password: p.String("password"), dsn: p.String("dsn"),
			}, nil
		},
	})
	component.Register(component.Spec{
		Type: "sink.test_cli_panic", Kind: engine.KindSink, Summary: "CLI test sink that panics", Accepts: md.KindAny,
		Fields: []component.Field{
			{Name: "panic_in", Type: component.String, Required: true, Enum: []string{"New", "Open", "Process", "Close", "Cleanup"}, Description: "the method that panics"},
		},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			if p.String("panic_in") == "New" {
				panic("test panic in New")
			}
			return &cliSink{panicIn: p.String("panic_in")}, nil
		},
	})
}

// TestRunWithRegistry runs `mdp components` and `mdp validate` over a
// separate registry: they see its components only, and the default
// registry's commands do not see them.
func TestRunWithRegistry(t *testing.T) {
	reg := component.NewRegistry()
	reg.MustRegister(component.Spec{
		Type: "sink.test_only_here", Kind: engine.KindSink, Summary: "a sink of one registry", Accepts: md.KindAny,
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) { return &cliSink{}, nil },
	})
	reg.MustRegister(component.Spec{
		Type: "provider.test_only_here", Kind: engine.KindSource, Summary: "a source of one registry", Produces: md.KindTrade,
		NewSource: func(p *component.Params, _ int) (engine.Source, error) { return &cliSource{}, nil },
	})
	var out, errb bytes.Buffer
	if code := cli.RunWith(context.Background(), cli.Options{Registry: reg}, []string{"components", "--json"}, &out, &errb); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var docs []cli.ComponentDoc
	if err := json.Unmarshal(out.Bytes(), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Type != "provider.test_only_here" || docs[1].Type != "sink.test_only_here" {
		t.Fatalf("components of the registry: %+v", docs)
	}
	job := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(job, []byte("dag:\n  nodes:\n    - {id: src, type: provider.test_only_here}\n    - {id: out, type: sink.test_only_here}\n  edges: [[src, out]]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := cli.RunWith(context.Background(), cli.Options{Registry: reg}, []string{"validate", "--config", job}, &out, &errb); code != cli.ExitOK {
		t.Fatalf("validate with the registry: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := cli.Run(context.Background(), []string{"validate", "--config", job}, &out, &errb); code != cli.ExitUsage ||
		!strings.Contains(errb.String(), `unknown component type "provider.test_only_here"`) {
		t.Fatalf("validate with the default registry: exit %d: %s", code, errb.String())
	}
}
