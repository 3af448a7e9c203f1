package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
	"github.com/mdpio/mdp/runtime"
)

// Taps: GET /api/v1/jobs/{name}/tap/{port} is a WebSocket streaming what a
// node emits on one output port ("node" or "node.port") for one symbol,
// for the dashboard's live candles.
//
// One recorder per (run, port) reads the engine's tap (engine.Job.Tap): a
// bounded channel the job never waits on, so a slow reader only makes the
// recorder miss batches (counted as skipped). The recorder keeps the last
// TapHistory records of each symbol, so a chart opens filled, and hands new
// records to the clients of their symbol. A client's pending records are
// conflated: past TapHistory of them the client is sent the symbol's
// history afresh instead, so a slow browser never holds more than that.
// Ports that carry bars are recorded from the start of every run (bars are
// few, and a chart should show the run's bars from its first); any other
// port from its first client on.

// TapHistory is how many records of each symbol a tap keeps.
const TapHistory = 500

// TapSymbols bounds the symbols one tap keeps history for; records of
// further symbols are counted, not kept.
const TapSymbols = 1000

// tapBuffer is the engine tap's channel, in batches.
const tapBuffer = 256

// The tap WebSocket sends JSON text messages {type, port, kind, symbol,
// symbols, records, skipped}:
//
//   - type "snapshot": the symbol's kept records (the whole history) and
//     every symbol the port has emitted so far; sent first, and again
//     when the client fell more than TapHistory records behind;
//   - type "records": records emitted since the last message, oldest
//     first; a bar re-emitted with update true replaces the bar of the
//     same start;
//   - type "symbols": the port emitted a symbol for the first time;
//   - type "end": the run ended; nothing more comes on this connection.
//
// Records are the JSON objects of `format: json` output. Skipped counts
// the records the recorder missed because it fell behind the job.
// tapHub holds the recorders of every job's current run.
type tapHub struct {
	log *slog.Logger
	mu  sync.Mutex
	// runs is each job's current run and its recorders by port name.
	runs map[string]*tapRun
}

type tapRun struct {
	u    *runtime.Unified
	recs map[string]*recorder
}

func newTapHub(log *slog.Logger) *tapHub { return &tapHub{log: log, runs: map[string]*tapRun{}} }

// Run registers a new run of a job (jobs.Options.OnRun): the previous
// run's recorders stop and their clients are told the run ended, and every
// port of the new run that carries bars is recorded from its first record.
func (h *Handler) Run(name string, u *runtime.Unified) { h.taps.run(name, u) }

func (t *tapHub) run(name string, u *runtime.Unified) {
	r := &tapRun{u: u, recs: map[string]*recorder{}}
	for _, p := range u.Job().TapPorts() {
		if p.Kind == md.KindBar {
			rec, err := newRecorder(u, p)
			if err != nil {
				t.log.Error("tap", "job", name, "port", p.Name(), "err", err)
				continue
			}
			r.recs[p.Name()] = rec
		}
	}
	t.mu.Lock()
	old := t.runs[name]
	t.runs[name] = r
	t.mu.Unlock()
	if old != nil {
		for _, rec := range old.recs {
			rec.stop()
		}
	}
}

// runs is what knows a job's current run: a jobs.Manager or jobs.Single.
type runs interface {
	Run(name string) *runtime.Unified
}

// sync registers the current run of a job when Run was not told of it (a
// job the manager restarted as it opened, before the handler existed).
func (t *tapHub) sync(name string, j Jobs) {
	rs, ok := j.(runs)
	if !ok {
		return
	}
	u := rs.Run(name)
	if u == nil {
		return
	}
	t.mu.Lock()
	r := t.runs[name]
	t.mu.Unlock()
	if r == nil || r.u != u {
		t.run(name, u)
	}
}

// recorderFor returns the recorder of a job's port, starting one if
// needed.
func (t *tapHub) recorderFor(name, portName string) (*recorder, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.runs[name]
	if r == nil {
		return nil, fmt.Errorf("job %q has not run in this server yet: start it to tap its nodes", name)
	}
	if rec := r.recs[portName]; rec != nil {
		return rec, nil
	}
	for _, p := range r.u.Job().TapPorts() {
		if p.Name() == portName {
			rec, err := newRecorder(r.u, p)
			if err != nil {
				return nil, err
			}
			r.recs[portName] = rec
			return rec, nil
		}
	}
	return nil, fmt.Errorf("job %q has no output port %q to tap; ports: %v", name, portName, portNames(r.u.Job()))
}

func portNames(j *engine.Job) []string {
	var out []string
	for _, p := range j.TapPorts() {
		out = append(out, p.Name())
	}
	return out
}

// forget drops a deleted job's recorders.
func (t *tapHub) forget(name string) {
	t.mu.Lock()
	r := t.runs[name]
	delete(t.runs, name)
	t.mu.Unlock()
	if r != nil {
		for _, rec := range r.recs {
			rec.stop()
		}
	}
}

// changed drops the recorders of a job that is gone.
func (t *tapHub) changed(name string, j Jobs) {
	if _, err := j.Status(name, false); errors.Is(err, jobs.ErrNotFound) {
		t.forget(name)
	}
}

func (t *tapHub) close() {
	t.mu.Lock()
	runs := t.runs
	t.runs = map[string]*tapRun{}
	t.mu.Unlock()
	for _, r := range runs {
		for _, rec := range r.recs {
			rec.stop()
		}
	}
}

// entry is one kept record: its key (a bar's start, else its event time)
// and its JSON.
type entry struct {
	key  int64
	data []byte
}

// history is one symbol's last TapHistory records, oldest first.
type history struct {
	recs []entry
}

// add appends e, replacing a kept bar of the same start (an update).
func (h *history) add(e entry, replace bool) {
	if replace {
		for i := len(h.recs) - 1; i >= 0; i-- {
			if h.recs[i].key == e.key {
				h.recs[i] = e
				return
			}
			if h.recs[i].key < e.key {
				break
			}
		}
	}
	if len(h.recs) == TapHistory {
		copy(h.recs, h.recs[1:])
		h.recs = h.recs[:TapHistory-1]
	}
	h.recs = append(h.recs, e)
}

// recorder reads one engine tap of one run.
type recorder struct {
	port engine.TapPort
	job  *engine.Job
	tap  *engine.Tap
	quit chan struct{}
	done chan struct{} // closed when the run ended or the recorder stopped

	mu       sync.Mutex
	hist     map[string]*history
	symbols  []string
	dropped  int64 // records of symbols past TapSymbols
	clients  map[*tapClient]struct{}
	stopOnce sync.Once
}

func newRecorder(u *runtime.Unified, p engine.TapPort) (*recorder, error) {
	tap, err := u.Job().Tap(p.Node, p.Port, tapBuffer)
	if err != nil {
		return nil, err
	}
	r := &recorder{port: p, job: u.Job(), tap: tap, quit: make(chan struct{}), done: make(chan struct{}),
		hist: map[string]*history{}, clients: map[*tapClient]struct{}{}}
	go r.loop()
	return r, nil
}

func (r *recorder) stop() { r.stopOnce.Do(func() { close(r.quit) }) }

func (r *recorder) loop() {
	defer func() {
		r.tap.Close()
		close(r.done)
		r.mu.Lock()
		for c := range r.clients {
			c.wake()
		}
		r.mu.Unlock()
	}()
	var buf []byte
	for {
		select {
		case b := <-r.tap.Batches():
			buf = r.record(b, buf)
			b.Release()
		case <-r.job.Done():
			// Everything the job emitted is in the channel by now.
			for {
				select {
				case b := <-r.tap.Batches():
					buf = r.record(b, buf)
					b.Release()
				default:
					return
				}
			}
		case <-r.quit:
			return
		}
	}
}

// record keeps b's records and hands them to their symbols' clients.
func (r *recorder) record(b *md.Batch, buf []byte) []byte {
	syms := r.job.Symbols().Snapshot()
	n := b.Len()
	r.mu.Lock()
	defer r.mu.Unlock()
	newSymbol := false
	for i := range n {
		var sym md.SymID
		var key int64
		replace := false
		switch b.Kind {
		case md.KindTrade:
			sym, key = b.Trades[i].Sym, b.Trades[i].TS
		case md.KindQuote:
			sym, key = b.Quotes[i].Sym, b.Quotes[i].TS
		case md.KindBar:
			sym, key, replace = b.Bars[i].Sym, b.Bars[i].Start, true
		case md.KindDerived:
			sym, key = b.Derived[i].Sym, b.Derived[i].TS
		}
		if int(sym) >= len(syms) {
			continue
		}
		name := syms[sym].Symbol
		h := r.hist[name]
		if h == nil {
			if len(r.hist) >= TapSymbols {
				r.dropped++
				continue
			}
			h = &history{}
			r.hist[name] = h
			r.symbols = append(r.symbols, name)
			newSymbol = true
		}
		buf = recfmt.AppendJSON(buf[:0], b, i, syms)
		e := entry{key: key, data: slices.Clone(buf)}
		h.add(e, replace)
		for c := range r.clients {
			if c.symbol == name {
				c.push(e.data)
			}
		}
	}
	if newSymbol {
		for c := range r.clients {
			c.mu.Lock()
			c.symbolsChanged = true
			c.mu.Unlock()
			c.wake()
		}
	}
	return buf
}

// tapClient is one WebSocket client of a recorder.
type tapClient struct {
	symbol string
	signal chan struct{} // capacity 1: something to send

	mu             sync.Mutex
	pending        [][]byte
	resync         bool
	symbolsChanged bool
}

func (c *tapClient) wake() {
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// push queues one record; past TapHistory pending the client gets the
// history afresh instead. The recorder's lock is held.
func (c *tapClient) push(data []byte) {
	c.mu.Lock()
	if !c.resync {
		if len(c.pending) >= TapHistory {
			c.pending, c.resync = nil, true
		} else {
			c.pending = append(c.pending, data)
		}
	}
	c.mu.Unlock()
	c.wake()
}

// subscribe adds a client for symbol; it starts with a snapshot.
func (r *recorder) subscribe(symbol string) *tapClient {
	c := &tapClient{symbol: symbol, signal: make(chan struct{}, 1), resync: true}
	r.mu.Lock()
	r.clients[c] = struct{}{}
	r.mu.Unlock()
	c.wake()
	return c
}

func (r *recorder) unsubscribe(c *tapClient) {
	r.mu.Lock()
	delete(r.clients, c)
	r.mu.Unlock()
}

// next builds the client's next message; nil when there is nothing to send.
func (r *recorder) next(c *tapClient) []byte {
	r.mu.Lock()
	c.mu.Lock()
	resync, pending, symbolsChanged := c.resync, c.pending, c.symbolsChanged
	c.resync, c.pending, c.symbolsChanged = false, nil, false
	c.mu.Unlock()
	var recs [][]byte
	var symbols []string
	typ := "records"
	switch {
	case resync:
		typ = "snapshot"
		if h := r.hist[c.symbol]; h != nil {
			for _, e := range h.recs {
				recs = append(recs, e.data)
			}
		}
		symbols = slices.Clone(r.symbols)
	case len(pending) > 0:
		recs = pending
	case symbolsChanged:
		typ = "symbols"
		symbols = slices.Clone(r.symbols)
	default:
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	if symbols != nil {
		slices.Sort(symbols)
	}
	return r.encode(typ, c.symbol, symbols, recs)
}

// encode writes a TapMessage by hand: the records are JSON already.
func (r *recorder) encode(typ, symbol string, symbols []string, recs [][]byte) []byte {
	out := []byte(`{"type":`)
	out = recfmt.AppendJSONString(out, typ)
	out = append(out, `,"port":`...)
	out = recfmt.AppendJSONString(out, r.port.Name())
	out = append(out, `,"kind":`...)
	out = recfmt.AppendJSONString(out, r.port.Kind.String())
	if symbol != "" {
		out = append(out, `,"symbol":`...)
		out = recfmt.AppendJSONString(out, symbol)
	}
	if symbols != nil || typ == "snapshot" {
		out = append(out, `,"symbols":[`...)
		for i, s := range symbols {
			if i > 0 {
				out = append(out, ',')
			}
			out = recfmt.AppendJSONString(out, s)
		}
		out = append(out, ']')
	}
	if recs != nil || typ == "snapshot" {
		out = append(out, `,"records":[`...)
		for i, rec := range recs {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, rec...)
		}
		out = append(out, ']')
	}
	out = append(out, `,"skipped":`...)
	out = fmt.Appendf(out, "%d}", r.tap.Skipped())
	return out
}

func init() {
	operations["GET /api/v1/jobs/{name}/taps"] = op{summary: "The output ports of the job's current or last run that may be tapped, with the record kind each carries.", ok: 200, result: "TapPortList", errors: []int{404}}
	operations["GET /api/v1/jobs/{name}/tap/{port}"] = op{summary: "WebSocket: what a node emits on one output port (\"node\" or \"node.port\") for one symbol: its last 500 records, then new ones, conflated so a slow client never slows the job.",
		ws: true, result: "TapMessage", query: []param{{"symbol", "string", "the symbol to stream (empty: only the list of symbols)"}}, errors: []int{404}}
	str := obj{"type": "string"}
	extraSchemas["TapPortList"] = obj{"type": "array", "items": obj{"type": "object", "properties": obj{"port": str, "node": str, "kind": str}}}
	extraSchemas["TapMessage"] = obj{"type": "object", "properties": obj{
		"type": obj{"enum": []string{"snapshot", "records", "symbols", "end"}}, "port": str, "kind": str, "symbol": str,
		"symbols": obj{"type": "array", "items": str},
		"records": obj{"type": "array", "description": "records as format: json writes them", "items": obj{"type": "object"}},
		"skipped": obj{"type": "integer", "description": "records the tap missed because it fell behind the job"}}}
}

func (h *Handler) tapRoutes() {
	h.handle("GET /api/v1/jobs/{name}/taps", h.tapList)
	h.handle("GET /api/v1/jobs/{name}/tap/{port}", h.tapWS)
	h.handle("GET /api/v1/jobs/{name}/history", h.history)
}

// TapPortInfo is one port GET /api/v1/jobs/{name}/taps lists.
type TapPortInfo struct {
	// Port is "node" (the main output) or "node.port".
	Port string `json:"port"`
	Node string `json:"node"`
	Kind string `json:"kind"`
}

func (h *Handler) tapList(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := h.jobs.Status(name, false); err != nil {
		h.fail(w, err)
		return
	}
	h.taps.sync(name, h.jobs)
	h.taps.mu.Lock()
	run := h.taps.runs[name]
	h.taps.mu.Unlock()
	out := []TapPortInfo{}
	if run != nil {
		for _, p := range run.u.Job().TapPorts() {
			out = append(out, TapPortInfo{Port: p.Name(), Node: p.Node, Kind: p.Kind.String()})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) tapWS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := h.jobs.Status(name, false); err != nil {
		h.fail(w, err)
		return
	}
	if h.opts.Manager != nil && h.opts.Manager.Isolation() == jobs.IsolationProcess {
		writeError(w, http.StatusConflict, fmt.Sprintf("job %q runs as a child process (mdp serve --isolation process): taps attach to a run inside the server, so they need --isolation inprocess", name))
		return
	}
	h.taps.sync(name, h.jobs)
	rec, err := h.taps.recorderFor(name, r.PathValue("port"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	conn, ok := acceptWS(w, r)
	if !ok {
		return
	}
	c := rec.subscribe(r.URL.Query().Get("symbol"))
	defer rec.unsubscribe(c)
	ctx := conn.CloseRead(context.Background())
	write := func(data []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		if err := conn.Write(wctx, websocket.MessageText, data); err != nil {
			if !errors.Is(err, context.Canceled) {
				h.log.Debug("tap websocket: write", "err", err)
			}
			_ = conn.CloseNow()
			return false
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.signal:
			if data := rec.next(c); data != nil && !write(data) {
				return
			}
			select {
			case <-rec.done:
				// The run ended (or a new one replaced it): what is left
				// went out above; say so and close.
				if data := rec.next(c); data != nil && !write(data) {
					return
				}
				write(rec.encode("end", c.symbol, nil, nil))
				_ = conn.Close(websocket.StatusNormalClosure, "run ended")
				return
			default:
			}
		}
	}
}
