package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"net/http/httptest"

	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/server"
)

// The browser tests drive the dashboard in headless Chromium (Debian's
// chromium package) against a job server in this process. Without
// Chromium they skip, saying how to install it; under CI=true they fail.
// Each saves a screenshot in $MDP_SCREENSHOTS (default: a directory under
// the system's temporary directory); the README's come from
// `MDP_SCREENSHOTS=$PWD/docs/img go test ./web/`.

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium for the dashboard's browser tests: install it (Debian/Ubuntu: apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// dash is a job server in this process and a browser tab on it.
type dash struct {
	t    *testing.T
	m    *jobs.Manager
	h    *server.Handler
	url  string
	dir  string
	ctx  context.Context
	mu   sync.Mutex
	errs []string // console errors and exceptions
}

func newDash(t *testing.T, width, height int) *dash {
	t.Helper()
	bin := chromium(t)
	d := &dash{t: t, dir: t.TempDir()}
	var hp atomic.Pointer[server.Handler]
	m, err := jobs.New(context.Background(), jobs.Options{
		State:    filepath.Join(d.dir, "state.db"),
		OnChange: func(name string) { hp.Load().Notify(name) },
		OnRun:    func(name string, u *runtime.Unified) { hp.Load().Run(name, u) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.Options{Manager: m, StatusInterval: 250 * time.Millisecond})
	hp.Store(h)
	srv := httptest.NewServer(h)
	d.m, d.h, d.url = m, h, srv.URL
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(width, height), chromedp.Flag("hide-scrollbars", true))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Open the tab first, so the listener misses nothing of the pages.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err = chromedp.Listen(ctx, func(ev any) {
		d.mu.Lock()
		defer d.mu.Unlock()
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				d.errs = append(d.errs, "console.error: "+strings.Join(parts, " "))
			}
		case *cdpruntime.EventExceptionThrown:
			d.errs = append(d.errs, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				d.errs = append(d.errs, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdpruntime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatal(err)
	}
	d.ctx = ctx
	t.Cleanup(func() {
		cancel()
		acancel()
		srv.Close()
		h.Close()
		_ = m.Close(context.Background())
	})
	return d
}

func (d *dash) run(actions ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	if err := chromedp.Do(d.ctx, actions...); err != nil {
		d.t.Fatalf("browser: %v\nconsole errors: %v", err, d.consoleErrors())
	}
}

func (d *dash) open(hash string) {
	d.t.Helper()
	d.run(chromedp.Navigate(d.url + "/" + hash))
}

// eval evaluates a JavaScript expression (awaiting a promise) into out;
// out nil discards the value.
func (d *dash) eval(js string, out any) {
	d.t.Helper()
	v, err := chromedp.Run(d.ctx, chromedp.Evaluate[json.RawMessage](js, chromedp.EvalAwaitPromise))
	if err != nil {
		d.t.Fatalf("evaluate %s: %v\nconsole errors: %v", js, err, d.consoleErrors())
	}
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			d.t.Fatalf("evaluate %s: %s: %v", js, v, err)
		}
	}
}

// wait polls a JavaScript condition until it is true.
func (d *dash) wait(what, js string, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(d.ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("waited %v for %s (%s): %v; console errors: %v", timeout, what, js, err, d.consoleErrors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *dash) consoleErrors() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.errs)
}

// noConsoleErrors fails the test if any page logged an error.
func (d *dash) noConsoleErrors() {
	d.t.Helper()
	if errs := d.consoleErrors(); len(errs) > 0 {
		d.t.Fatalf("console errors: %s", strings.Join(errs, "\n"))
	}
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("MDP_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mdp-dashboard-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the viewport as name.png.
func (d *dash) screenshot(name string) {
	d.t.Helper()
	time.Sleep(300 * time.Millisecond)
	buf, err := chromedp.Run(d.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		d.t.Fatal(err)
	}
	path := filepath.Join(screenshotDir(d.t), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		d.t.Fatal(err)
	}
	d.t.Logf("screenshot %s (%d bytes)", path, len(buf))
}

func (d *dash) submit(job string, start bool) jobs.JobStatus {
	d.t.Helper()
	st, err := d.m.Submit("job.yaml", []byte(job), "", start)
	if err != nil {
		d.t.Fatal(err)
	}
	return st
}

func liveJob(name, dir string, rate int) string {
	return fmt.Sprintf(`name: %s
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT, SPY], rate: %d, seed: 3}}
    - {id: bars, type: operator.bars, params: {interval: 100ms}}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges: [[src, bars], [bars, store]]
`, name, rate, filepath.Join(dir, name+".db"))
}

func TestDashboardJobsPageRateRisesAndStopDrains(t *testing.T) {
	d := newDash(t, 1280, 800)
	d.submit(liveJob("alpha", d.dir, 3000), true)
	d.submit(liveJob("beta", d.dir, 500), true)
	d.submit(liveJob("gamma", d.dir, 100), false)
	d.open("#/")
	d.wait("the jobs listed", `document.querySelectorAll('#jobs tr[data-job]').length === 3`, 20*time.Second)
	rate := `(() => { const v = document.querySelector('#jobs tr[data-job="alpha"] td:nth-child(5)').textContent;
		return v.endsWith('k') ? parseFloat(v) * 1000 : parseFloat(v); })()`
	// events/s rises from nothing to the source's rate, pushed over the
	// WebSocket (the page never polls).
	d.wait("alpha's events/s to reach 1000", rate+` >= 1000`, 20*time.Second)
	d.wait("alpha running", `document.querySelector('#jobs tr[data-job="alpha"] .state').textContent === 'running'`, 5*time.Second)
	// Out /s: the bars reaching the store (3 symbols, 100 ms bars).
	d.wait("alpha's out rate", `parseFloat(document.querySelector('#jobs tr[data-job="alpha"] td:nth-child(6)').textContent) > 0`, 10*time.Second)
	d.screenshot("jobs")
	// Stop from the button: the job drains (every record the source emitted
	// reached the store) and the row says stopped.
	d.run(chromedp.Click(chromedp.CSS(`#jobs tr[data-job="alpha"] button[data-act="stop"]`)))
	d.wait("alpha stopped", `document.querySelector('#jobs tr[data-job="alpha"] .state').textContent === 'stopped'`, 30*time.Second)
	st, err := d.m.Status("alpha", true)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "stopped" || st.Desired != "stopped" || st.LastError != "" {
		t.Fatalf("after the stop button: %+v", st)
	}
	n := map[string][2]int64{}
	for _, x := range st.Runtime.Nodes {
		n[x.ID] = [2]int64{x.EventsIn, x.EventsOut}
	}
	if n["src"][1] == 0 || n["bars"][0] != n["src"][1] || n["store"][0] != n["bars"][1] || n["bars"][1] == 0 {
		t.Fatalf("not drained: %v", n)
	}
	if got := rows(t, filepath.Join(d.dir, "alpha.db"), ""); got != n["bars"][1] {
		t.Fatalf("store has %d bars, bars emitted %d", got, n["bars"][1])
	}
	// Start and delete buttons work too.
	d.run(chromedp.Click(chromedp.CSS(`#jobs tr[data-job="gamma"] button[data-act="start"]`)))
	d.wait("gamma running", `document.querySelector('#jobs tr[data-job="gamma"] .state').textContent === 'running'`, 20*time.Second)
	d.run(chromedp.Click(chromedp.CSS(`#jobs tr[data-job="alpha"] button[data-act="delete"]`)),
		chromedp.Click(chromedp.CSS(`#jobs tr[data-job="alpha"] button[data-act="delete"]`)))
	d.wait("alpha gone", `!document.querySelector('#jobs tr[data-job="alpha"]')`, 10*time.Second)
	d.noConsoleErrors()
}

// rows counts a job's bars in its SQLite file (of one symbol, or all).
func rows(t *testing.T, path, symbol string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	q, args := `SELECT count(*) FROM bars_ohlcv`, []any{}
	if symbol != "" {
		q, args = q+` WHERE symbol = ?`, []any{symbol}
	}
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDashboardGraphShowsEveryNodeAndEdge(t *testing.T) {
	d := newDash(t, 1280, 800)
	d.submit(fmt.Sprintf(`name: graphed
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 2000, seed: 5}}
    - {id: clean, type: operator.filter, params: {expr: "price > 0"}}
    - {id: bars, type: operator.bars, params: {interval: 1s}, parallelism: 2}
    - {id: store, type: sink.sqlite, params: {path: %q}}
    - {id: trades, type: sink.null}
  edges: [[src, clean], [clean, bars], [bars, store], [src, trades]]
`, filepath.Join(d.dir, "graphed.db")), true)
	d.open("#/job/graphed")
	d.wait("the graph", `document.querySelectorAll('#graph g[data-node]').length === 5`, 20*time.Second)
	var nodes, edges []string
	d.eval(`[...document.querySelectorAll('#graph g[data-node]')].map(g => g.dataset.node).sort()`, &nodes)
	d.eval(`[...document.querySelectorAll('#graph path[data-edge]')].map(p => p.dataset.edge).sort()`, &edges)
	if strings.Join(nodes, " ") != "bars clean src store trades" {
		t.Fatalf("nodes drawn: %v", nodes)
	}
	if strings.Join(edges, ", ") != "bars -> store, clean -> bars, src -> clean, src -> trades" {
		t.Fatalf("edges drawn: %v", edges)
	}
	// Layers: src left of clean left of bars left of store; trades in
	// src's next layer.
	var xs map[string]float64
	d.eval(`Object.fromEntries([...document.querySelectorAll('#graph g[data-node]')].map(g => [g.dataset.node, g.transform.baseVal[0].matrix.e]))`, &xs)
	if !(xs["src"] < xs["clean"] && xs["clean"] < xs["bars"] && xs["bars"] < xs["store"] && xs["trades"] == xs["clean"]) {
		t.Fatalf("layers: %v", xs)
	}
	// Live figures: the source's rate and queue depths; the bars node
	// says its parallelism; sparklines per node; every edge coloured.
	d.wait("a rate on src", `/out [0-9.]+k?\/s/.test(document.querySelector('#graph g[data-node="src"]').textContent) && !/out 0\/s/.test(document.querySelector('#graph g[data-node="src"]').textContent)`, 20*time.Second)
	d.wait("parallelism shown", `document.querySelector('#graph g[data-node="bars"]').textContent.includes('×2')`, 5*time.Second)
	d.wait("sparklines", `document.querySelectorAll('[data-spark] canvas').length === 5`, 10*time.Second)
	d.wait("edges coloured", `[...document.querySelectorAll('#graph path[data-edge]')].every(p => p.getAttribute('stroke'))`, 5*time.Second)
	d.wait("the log", `document.querySelector('#logs').textContent.includes('job running')`, 10*time.Second)
	d.screenshot("graph")
	d.noConsoleErrors()
}

type bar struct {
	Time                           float64
	Open, High, Low, Close, Volume float64
}

func TestDashboardCandlesMatchTheStore(t *testing.T) {
	d := newDash(t, 1280, 800)
	db := filepath.Join(d.dir, "candles.db")
	d.submit(fmt.Sprintf(`name: candles
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], count: 30000, step: 10ms, seed: 11}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges: [[src, bars], [bars, store]]
`, db), true)
	waitState(t, d.m, "candles", "stopped")
	d.open("#/candles/candles?port=bars&symbol=AAPL")
	want := storeBars(t, db, "AAPL")
	if len(want) != 300 {
		t.Fatalf("the store has %d AAPL bars, want 300", len(want))
	}
	d.wait("every bar as a candle", fmt.Sprintf(`window.mdpCandles && window.mdpCandles.data().length === %d`, len(want)), 20*time.Second)
	var got []bar
	d.eval(`window.mdpCandles.data().map(b => ({Time: b.time, Open: b.open, High: b.high, Low: b.low, Close: b.close}))`, &got)
	for i := range want {
		w, g := want[i], got[i]
		if g.Time != w.Time || g.Open != w.Open || g.High != w.High || g.Low != w.Low || g.Close != w.Close {
			t.Fatalf("candle %d: chart %+v, store %+v", i, g, w)
		}
	}
	d.wait("the symbol list", `[...document.querySelectorAll('#symbol option')].map(o => o.value).join() === 'AAPL,MSFT'`, 5*time.Second)
	d.wait("the run's end", `document.querySelector('#candleinfo').textContent.includes('300 candles') && document.querySelector('#candleinfo').textContent.includes('run ended')`, 5*time.Second)
	d.screenshot("candles")
	d.noConsoleErrors()
}

func waitState(t *testing.T, m *jobs.Manager, name, state string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := m.Status(name, false)
		if err == nil && st.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %+v, %v; want %s", name, st, err, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func storeBars(t *testing.T, path, symbol string) []bar {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query(`SELECT ts, open, high, low, close, volume FROM bars_ohlcv WHERE symbol = ? ORDER BY ts`, symbol)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []bar
	for rs.Next() {
		var ts string
		var b bar
		if err := rs.Scan(&ts, &b.Open, &b.High, &b.Low, &b.Close, &b.Volume); err != nil {
			t.Fatal(err)
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("ts %q: %v", ts, err)
		}
		b.Time = float64(tm.UnixNano()) / 1e9
		out = append(out, b)
	}
	return out
}

func TestDashboardEditorMarksErrorsAtTheirLines(t *testing.T) {
	d := newDash(t, 1280, 800)
	bad := `name: broken
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 10}}
    - {id: bars, type: operator.barz, params: {interval: 1s}}
    - {id: store, type: sink.sqlite, params: {path: x.db, batchsize: 3}}
  edges: [[src, bars], [bars, store]]
`
	// What the server says, to compare the marks with.
	_, err := d.m.Validate("job.yaml", []byte(bad))
	if err == nil {
		t.Fatal("the broken job validates")
	}
	d.open("#/edit")
	d.wait("the template validated", `document.querySelector('#verdict').textContent.startsWith('Valid')`, 10*time.Second)
	text, _ := json.Marshal(bad)
	d.eval(fmt.Sprintf(`(() => { const a = document.querySelector('#editor'); a.value = %s; a.dispatchEvent(new Event('input')); return true; })()`, text), new(bool))
	d.wait("the problems", `document.querySelectorAll('#problems li').length >= 2`, 10*time.Second)
	var marked []int
	var listed []string
	d.eval(`[...document.querySelectorAll('.gutter div.bad')].map(d => +d.dataset.line)`, &marked)
	d.eval(`[...document.querySelectorAll('#problems li')].map(li => li.textContent)`, &listed)
	want := map[int]bool{}
	for _, line := range strings.Split(err.Error(), "\n") {
		var l, c int
		if _, e := fmt.Sscanf(line, "job.yaml:%d:%d:", &l, &c); e == nil {
			want[l] = true
			found := false
			for _, s := range listed {
				found = found || strings.HasPrefix(s, fmt.Sprintf("line %d, column %d: ", l, c))
			}
			if !found {
				t.Errorf("problem at %d:%d (%s) not listed: %q", l, c, line, listed)
			}
		}
	}
	if !want[5] || !want[6] {
		t.Fatalf("the server's errors are not at lines 5 and 6: %v", err)
	}
	slices.Sort(marked)
	if fmt.Sprint(marked) != "[5 6]" {
		t.Fatalf("gutter marks at lines %v, want [5 6]; problems %q", marked, listed)
	}
	// Keyboard: a problem's button puts the caret at its line.
	d.run(chromedp.Focus(chromedp.CSS(`#problems li button`)), chromedp.KeyEvent("\r"))
	var caretLine int
	d.eval(`(() => { const a = document.querySelector('#editor'); return a.value.slice(0, a.selectionStart).split('\n').length; })()`, &caretLine)
	if caretLine != 5 && caretLine != 6 {
		t.Fatalf("caret on line %d after choosing a problem", caretLine)
	}
	d.screenshot("editor")
	// Fixed, it validates, and submit registers it.
	fixed := strings.Replace(strings.Replace(bad, "operator.barz", "operator.bars", 1), ", batchsize: 3", "", 1)
	text, _ = json.Marshal(fixed)
	d.eval(fmt.Sprintf(`(() => { const a = document.querySelector('#editor'); a.value = %s; a.dispatchEvent(new Event('input')); return true; })()`, text), new(bool))
	d.wait("valid", `document.querySelector('#verdict').textContent.startsWith('Valid: broken')`, 10*time.Second)
	d.run(chromedp.Click(chromedp.CSS(`#submit`)))
	d.wait("the job page", `location.hash === '#/job/broken'`, 10*time.Second)
	if st, err := d.m.Status("broken", false); err != nil || st.State != "created" {
		t.Fatalf("submitted job: %+v %v", st, err)
	}
	d.noConsoleErrors()
}

// Every page, in both themes, at laptop and phone width, logs no error.
func TestDashboardNoConsoleErrors(t *testing.T) {
	for _, size := range [][2]int{{1280, 800}, {390, 844}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			d := newDash(t, size[0], size[1])
			d.submit(liveJob("one", d.dir, 1000), true)
			for _, theme := range []string{"light", "dark"} {
				for _, page := range []struct{ hash, ready string }{
					{"#/", `document.querySelector('#jobs tr[data-job="one"]')`},
					{"#/job/one", `document.querySelector('#graph g[data-node="bars"]')`},
					{"#/candles/one", `window.mdpCandles && document.querySelector('#symbol option')`},
					{"#/edit/one", `document.querySelector('#verdict').textContent.startsWith('Valid')`},
					{"#/edit", `document.querySelector('#verdict').textContent.startsWith('Valid')`},
				} {
					d.open(page.hash)
					d.eval(fmt.Sprintf(`localStorage.setItem('mdp-theme', %q)`, theme), nil)
					d.run(chromedp.Reload())
					d.wait(page.hash, page.ready, 20*time.Second)
					var th string
					d.eval(`document.documentElement.dataset.theme`, &th)
					if th != theme {
						t.Fatalf("theme %q, want %q", th, theme)
					}
					// Keyboard reachable: the controls take focus by Tab.
					var focusable int
					d.eval(`[...document.querySelectorAll('main a[href], main button, main select, main textarea')].filter(e => !e.disabled && e.tabIndex >= 0).length`, &focusable)
					if focusable == 0 {
						t.Fatalf("%s: nothing in the page takes focus", page.hash)
					}
					if size[0] < 500 {
						// Nothing wider than the phone's screen but the
						// scrolling tables and graph.
						var wide bool
						d.eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &wide)
						if wide {
							t.Fatalf("%s at phone width scrolls sideways", page.hash)
						}
					}
				}
				if size[0] < 500 && theme == "dark" {
					d.open("#/")
					d.wait("the jobs", `document.querySelector('#jobs tr[data-job="one"]')`, 10*time.Second)
					d.screenshot("jobs-phone-dark")
				}
			}
			d.noConsoleErrors()
		})
	}
}

// 50 jobs on the jobs page, and a chart taking 100 bar updates a second:
// the frame times are measured in the page and reported.
func TestDashboardFrameTime(t *testing.T) {
	d := newDash(t, 1280, 800)
	for i := range 49 {
		d.submit(fmt.Sprintf(`name: job%02d
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], rate: 50, seed: %d}}
    - {id: out, type: sink.null}
  edges: [[src, out]]
`, i, i+1), true)
	}
	// 1000 trades a second into 10 ms bars: the chart gets 100 new
	// candles a second.
	d.submit(`name: fast
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], rate: 1000, seed: 9}}
    - {id: bars, type: operator.bars, params: {interval: 10ms}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`, true)
	measure := `new Promise(done => { const ts = []; let last = performance.now();
		const end = last + 5000;
		const step = (now) => { ts.push(now - last); last = now; if (now < end) requestAnimationFrame(step); else done(ts); };
		requestAnimationFrame(step); })`
	report := func(page string, ts []float64) {
		slices.Sort(ts)
		q := func(p float64) float64 { return ts[int(math.Min(float64(len(ts)-1), p*float64(len(ts))))] }
		t.Logf("%s: %d frames in 5 s, frame time p50 %.1f ms, p95 %.1f ms, max %.1f ms", page, len(ts), q(0.5), q(0.95), ts[len(ts)-1])
		if len(ts) < 10 {
			t.Fatalf("%s: only %d frames in 5 s", page, len(ts))
		}
	}
	d.open("#/")
	d.wait("50 jobs", `document.querySelectorAll('#jobs tr[data-job]').length === 50`, 30*time.Second)
	var ts []float64
	d.eval(measure, &ts)
	report("jobs page, 50 jobs", ts)
	d.open("#/candles/fast?port=bars&symbol=AAPL")
	d.wait("candles flowing", `window.mdpCandles && window.mdpCandles.updates() > 50`, 20*time.Second)
	// The chart must take every bar the job emits while the frames are
	// measured. The job's own count is the reference, not the nominal 100
	// a second: on a loaded machine the paced source itself falls behind.
	barsOut := func() int64 {
		st, err := d.m.Status("fast", true)
		if err != nil || st.Runtime == nil {
			t.Fatalf("status of fast: %+v %v", st, err)
		}
		for _, n := range st.Runtime.Nodes {
			if n.ID == "bars" {
				return n.EventsOut
			}
		}
		t.Fatal("no bars node in the status of fast")
		return 0
	}
	var before, after float64
	emittedBefore := barsOut()
	d.eval(`window.mdpCandles.updates()`, &before)
	d.eval(measure, &ts)
	d.eval(`window.mdpCandles.updates()`, &after)
	emitted := barsOut() - emittedBefore
	report("candles page", ts)
	got := int64(after - before)
	t.Logf("candles page: %d bar updates received while measuring (%.0f/s), the job emitted %d", got, float64(got)/5, emitted)
	// Bars in flight at either edge of the window (one frame's worth, the
	// tap's and the socket's buffers) may fall on the other side of it.
	if emitted < 50 || float64(got) < 0.9*float64(emitted)-20 {
		t.Fatalf("the chart got %d bar updates while the job emitted %d", got, emitted)
	}
	d.noConsoleErrors()
}

// mdp run with its metrics listener on serves the dashboard read-only: its
// one job is listed without buttons that change things, and its bars can be
// watched.
func TestDashboardReadOnlyUnderMdpRun(t *testing.T) {
	d := newDash(t, 1280, 800)
	job := fmt.Sprintf(`name: solo
metrics: {enable: true, listen: "127.0.0.1:0"}
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], rate: 2000, seed: 4}}
    - {id: bars, type: operator.bars, params: {interval: 100ms}}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges: [[src, bars], [bars, store]]
`, filepath.Join(d.dir, "solo.db"))
	var api *server.Handler
	u, err := runtime.NewFromBytes("solo.yaml", []byte(job), runtime.Options{API: func(u *runtime.Unified) http.Handler {
		api = server.New(server.Options{Jobs: jobs.NewSingle(u)})
		api.Run(u.Name(), u)
		return api
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		u.Stop()
		_ = u.Wait()
		api.Close()
	}()
	d.url = "http://" + u.MetricsAddr()
	d.open("#/")
	d.wait("the job", `document.querySelector('#jobs tr[data-job="solo"] .state').textContent === 'running'`, 20*time.Second)
	var visible int
	d.eval(`[...document.querySelectorAll('button[data-act], [data-nav="edit"]')].filter(b => b.offsetParent !== null).length`, &visible)
	if visible != 0 {
		t.Fatalf("%d controls that change things are shown under mdp run", visible)
	}
	d.open("#/candles/solo?port=bars&symbol=AAPL")
	d.wait("candles", `window.mdpCandles && window.mdpCandles.data().length >= 5`, 20*time.Second)
	d.noConsoleErrors()
}

// A bar corrected after the chart drew newer ones (late_policy update) is
// redrawn where it is: a live feed the test controls sends trades at 0, 1,
// 2 and 3 s, the chart draws the three closed bars, then a late trade at
// 0.5 s corrects the first bar, which reaches the page as an update behind
// its last candle; the chart's first candle changes and the others stay.
// After the stop the chart holds what the store holds, bar for bar.
func TestDashboardCandlesRedrawAnOlderBarOnUpdate(t *testing.T) {
	d := newDash(t, 1280, 800)
	feed := make(chan string, 16)
	exchange := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(r.Context())
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-feed:
				if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
					return
				}
			}
		}
	}))
	defer exchange.Close()
	base := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	id := 0
	trade := func(at time.Duration, price string) {
		id++
		ms := base.Add(at).UnixMilli()
		feed <- fmt.Sprintf(`{"e":"trade","E":%d,"s":"BTCUSDT","t":%d,"p":"%s","q":"1","T":%d,"m":false}`, ms, id, price, ms)
	}
	db := filepath.Join(d.dir, "late.db")
	d.submit(fmt.Sprintf(`name: late
dag:
  nodes:
    - {id: src, type: provider.websocket, params: {url: %q, preset: binance}}
    - {id: bars, type: operator.bars, params: {interval: 1s, late_policy: update, allowed_lateness: 1h}}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges: [[src, bars], [bars, store]]
`, strings.Replace(exchange.URL, "http", "ws", 1), db), true)
	waitState(t, d.m, "late", "running")
	for i, p := range []string{"100", "101", "102", "103"} {
		trade(time.Duration(i)*time.Second, p)
	}
	d.open("#/candles/late?port=bars&symbol=BTCUSDT")
	type candle struct{ Time, Open, High, Low, Close float64 }
	candles := func() []candle {
		var out []candle
		d.eval(`window.mdpCandles.data().map(b => ({Time: b.time, Open: b.open, High: b.high, Low: b.low, Close: b.close}))`, &out)
		return out
	}
	d.wait("the three closed bars", `window.mdpCandles && window.mdpCandles.data().length === 3`, 30*time.Second)
	before := candles()
	t0 := float64(base.Unix())
	if fmt.Sprint(before) != fmt.Sprint([]candle{{t0, 100, 100, 100, 100}, {t0 + 1, 101, 101, 101, 101}, {t0 + 2, 102, 102, 102, 102}}) {
		t.Fatalf("candles before the late trade: %v", before)
	}
	var updates0 float64
	d.eval(`window.mdpCandles.updates()`, &updates0)
	// The late trade: the first bar gets a new low and close.
	trade(500*time.Millisecond, "90")
	d.wait("the first candle corrected", `window.mdpCandles.data().length === 3 && window.mdpCandles.data()[0].low === 90`, 30*time.Second)
	after := candles()
	if fmt.Sprint(after) != fmt.Sprint([]candle{{t0, 100, 100, 90, 90}, {t0 + 1, 101, 101, 101, 101}, {t0 + 2, 102, 102, 102, 102}}) {
		t.Fatalf("candles after the late trade: %v", after)
	}
	// It came as one live update (not a fresh snapshot of the history).
	var updates1 float64
	d.eval(`window.mdpCandles.updates()`, &updates1)
	if updates1 != updates0+1 {
		t.Fatalf("bar records received for the correction: %v, want 1", updates1-updates0)
	}
	// A newer bar after it still lands at the end.
	trade(4*time.Second, "104")
	d.wait("the fourth candle", `window.mdpCandles.data().length === 4`, 30*time.Second)
	d.screenshot("candles-update")
	// The stop drains the open bar; the chart then holds the store's bars.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.m.Stop(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	want := storeBars(t, db, "BTCUSDT")
	if len(want) != 5 || want[0].Low != 90 || want[0].Close != 90 || want[0].Volume != 2 {
		t.Fatalf("store: %+v", want)
	}
	d.wait("every stored bar", fmt.Sprintf(`window.mdpCandles.data().length === %d`, len(want)), 30*time.Second)
	got := candles()
	for i, w := range want {
		if g := got[i]; g.Time != w.Time || g.Open != w.Open || g.High != w.High || g.Low != w.Low || g.Close != w.Close {
			t.Fatalf("candle %d: chart %+v, store %+v", i, g, w)
		}
	}
	d.noConsoleErrors()
}
