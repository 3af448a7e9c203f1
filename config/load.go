package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Keys accepted in each section.
var (
	topKeys        = []string{"mode", "name", "dag", "classic", "metrics", "feedback", "shutdown_timeout", "batch_size", "restart", "checkpoint", "scaleout"}
	dagKeys        = []string{"nodes", "edges", "graph"}
	graphKeys      = []string{"nodes", "edges"}
	nodeKeys       = []string{"id", "type", "params", "parallelism", "on_error", "chain"}
	edgeKeys       = []string{"from", "to", "capacity", "policy"}
	classicKeys    = []string{"spec"}
	specKeys       = []string{"name", "source", "operators", "batcher", "sink"}
	refKeys        = []string{"type", "params", "id", "parallelism", "on_error", "chain"}
	metricsKeys    = []string{"enable", "listen"}
	checkpointKeys = []string{"interval", "store", "keep", "tolerable_failures"}
	feedbackKeys   = []string{"enable_feedback", "scale_ok", "scale_soft", "scale_hard", "soft_at", "hard_at"}
)

// bufferType is the component a classic spec's batcher compiles to.
const bufferType = "operator.buffer"

type loader struct {
	file    string
	opts    LoadOptions
	env     func(string) (string, bool)
	origin  map[*yaml.Node]string
	rank    map[string]int
	sources []string
	errs    Errors

	doc *Document
	// ids of every node written, with its path, for edge checks.
	ids     map[string]string
	idOrder []string
	// nodes whose type is unknown: kept in the graph check as placeholders.
	placeholders map[string]engine.NodeKind
	// phPorts and phInPorts are the output and input ports edges use on
	// placeholder nodes.
	phPorts, phInPorts [][2]string
	// exempt are nodes whose connectivity is not reported: the ends of an
	// edge that named an unknown node (and the node it was likely meant
	// to name), so one typo is reported once.
	exempt map[string]bool
	// incomplete is set when a classic chain lacks its source or sink, or a
	// node's kind is unknown: connectivity is then not reported.
	incomplete bool
}

func newLoader(name string, opts LoadOptions) *loader {
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	return &loader{
		file: name, opts: opts, env: env,
		origin: map[*yaml.Node]string{}, rank: map[string]int{name: 0},
		ids: map[string]string{}, placeholders: map[string]engine.NodeKind{}, exempt: map[string]bool{},
	}
}

func (l *loader) sortErrors() {
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		ra, rb := l.rankOf(a.File), l.rankOf(b.File)
		if ra != rb {
			return ra < rb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

func (l *loader) rankOf(file string) int {
	if r, ok := l.rank[file]; ok {
		return r
	}
	return len(l.rank)
}

func (l *loader) load(data []byte) *Document {
	root, ok := l.parse(l.file, data)
	if !ok {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		l.errAt(root, "", "a job file must be a mapping of key: value, got %s", describe(root))
		return nil
	}
	if l.file != "" && len(data) > 0 {
		l.sources = append(l.sources, l.file)
	}
	l.overlayEnv(root)
	for _, s := range l.opts.Sets {
		l.applySet(root, s)
	}
	if l.opts.Mode != "" {
		l.rank["--mode"] = len(l.rank)
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: l.opts.Mode}
		l.origin[n] = "--mode"
		setKey(root, "mode", n, l.keyNode("mode", "--mode"))
		l.sources = append(l.sources, "--mode")
	}
	if l.opts.Job != "" {
		l.rank["--job"] = len(l.rank)
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: l.opts.Job}
		l.origin[n] = "--job"
		setKey(root, "name", n, l.keyNode("name", "--job"))
		l.sources = append(l.sources, "--job")
	}
	l.interpolate(root, "")

	d := &Document{
		File: l.file, Metrics: MetricsConfig{Listen: defaultMetricsListen},
		Feedback:        engine.DefaultFeedback(),
		ShutdownTimeout: defaultShutdownTimeout, Restart: RestartOnFailure, Sources: l.sources,
	}
	l.doc = d
	top, _ := l.mapping(root, "", topKeys)

	modeNode := root
	if e, ok := top["mode"]; ok {
		modeNode = e.val
		if s, ok := l.str(e); ok {
			switch s {
			case modeClassic, ModeDAG:
				d.Mode = s
			default:
				l.errUnknownChoice(e, "mode", s, modeClassic, ModeDAG)
			}
		}
	} else {
		_, hasDAG := top["dag"]
		_, hasClassic := top["classic"]
		switch {
		case hasDAG && hasClassic:
			l.errAt(root, "mode", "required when the job has both a dag and a classic section; set mode: dag or mode: classic")
		case hasDAG:
			d.Mode = ModeDAG
		case hasClassic:
			d.Mode = modeClassic
		default:
			l.errAt(root, "", "the job has no dag or classic section; write one (or set %s or %s)", EnvDAGJSON, EnvClassicJSON)
		}
	}
	if e, ok := top["name"]; ok {
		d.Name, _ = l.str(e)
	}
	switch d.Mode {
	case ModeDAG:
		if e, ok := top["dag"]; ok && !isNull(resolve(e.val)) {
			l.decodeDAG(e)
		} else {
			l.errAt(modeNode, "mode", "mode is dag but the job has no dag section")
		}
	case modeClassic:
		if e, ok := top["classic"]; ok && !isNull(resolve(e.val)) {
			l.decodeClassic(e)
		} else {
			l.errAt(modeNode, "mode", "mode is classic but the job has no classic section")
		}
	}
	if e, ok := top["metrics"]; ok {
		l.decodeMetrics(e)
	}
	if e, ok := top["feedback"]; ok {
		l.decodeFeedback(e)
	}
	if e, ok := top["shutdown_timeout"]; ok {
		if dur, ok := l.duration(e, 0); ok {
			d.ShutdownTimeout = dur
		}
	}
	if e, ok := top["batch_size"]; ok {
		d.BatchSize, _ = l.intRange(e, 1, md.MaxBatchSize)
	}
	if e, ok := top["restart"]; ok {
		if s, ok := l.str(e); ok {
			switch s {
			case RestartAlways, RestartOnFailure, RestartNever:
				d.Restart = s
			default:
				l.errUnknownChoice(e, "restart policy", s, RestartAlways, RestartOnFailure, RestartNever)
			}
		}
	}
	if e, ok := top["checkpoint"]; ok && !isNull(resolve(e.val)) {
		l.decodeCheckpoint(e)
	}
	if d.Name == "" {
		d.Name = defaultName(l.file)
	}
	if len(d.Nodes) > 0 {
		l.checkGraph()
	}
	if e, ok := top["scaleout"]; ok && !isNull(resolve(e.val)) {
		l.decodeScaleout(e)
	}
	return d
}

// defaultName is the job name when neither the file nor a flag gives one:
// the file's base name without its extension.
func defaultName(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	if file == "" || base == "" || base == "." {
		return "job"
	}
	return base
}

func (l *loader) decodeCheckpoint(e entry) {
	m, ok := l.mapping(e.val, e.path, checkpointKeys)
	if !ok {
		return
	}
	c := &CheckpointConfig{Keep: defaultCheckpointKeep, TolerableFailures: -1}
	good := true
	if v, ok := m["interval"]; ok {
		var ok bool
		c.Interval, ok = l.duration(v, 0)
		good = good && ok
	} else {
		l.errAt(e.val, e.path, "checkpoint needs an interval, such as interval: 5s")
		good = false
	}
	if v, ok := m["store"]; ok {
		if s, ok := l.str(v); ok {
			if s == "" {
				l.errAt(v.val, v.path, "want a directory or a file:// URL, got an empty string")
				good = false
			} else if strings.Contains(s, "://") && !strings.HasPrefix(s, "file://") {
				l.errAt(v.val, v.path, "only a directory or a file:// URL is supported, got %q", s)
				good = false
			}
			c.Store = s
		} else {
			good = false
		}
	} else {
		l.errAt(e.val, e.path, "checkpoint needs a store: the directory checkpoints are written to")
		good = false
	}
	if v, ok := m["keep"]; ok {
		c.Keep, ok = l.intRange(v, 1, maxCheckpointKeep)
		good = good && ok
	}
	if v, ok := m["tolerable_failures"]; ok {
		c.TolerableFailures, ok = l.intRange(v, -1, maxTolerableFailures)
		good = good && ok
	}
	if good {
		l.doc.Checkpoint = c
	}
}

func (l *loader) decodeMetrics(e entry) {
	m, _ := l.mapping(e.val, e.path, metricsKeys)
	if v, ok := m["enable"]; ok {
		l.doc.Metrics.Enable, _ = l.boolean(v)
	}
	if v, ok := m["listen"]; ok {
		if s, ok := l.str(v); ok {
			if err := component.CheckHostPort(s); err != nil {
				l.errAt(v.val, v.path, "%v", err)
			} else {
				l.doc.Metrics.Listen = s
			}
		}
	}
}

func (l *loader) decodeFeedback(e entry) {
	m, _ := l.mapping(e.val, e.path, feedbackKeys)
	fb := &l.doc.Feedback
	if v, ok := m["enable_feedback"]; ok {
		fb.Enable, _ = l.boolean(v)
	}
	for key, dst := range map[string]*float64{"scale_ok": &fb.ScaleOK, "scale_soft": &fb.ScaleSoft, "scale_hard": &fb.ScaleHard} {
		if v, ok := m[key]; ok {
			if x, ok := l.fraction(v, 0, 1, false); ok {
				*dst = x
			}
		}
	}
	okSoft, okHard := true, true
	if v, ok := m["soft_at"]; ok {
		l.doc.Feedback.SoftAt, okSoft = l.fraction(v, 0, 1, true)
	}
	if v, ok := m["hard_at"]; ok {
		l.doc.Feedback.HardAt, okHard = l.fraction(v, 0, 1, true)
	}
	if okSoft && okHard && l.doc.Feedback.SoftAt >= l.doc.Feedback.HardAt {
		at := e.val
		path := e.path
		if v, ok := m["soft_at"]; ok {
			at, path = v.val, v.path
		}
		l.errAt(at, path, "soft_at (%g) must be below hard_at (%g)", l.doc.Feedback.SoftAt, l.doc.Feedback.HardAt)
	}
}

// decodeDAG decodes the dag section (or its dag.graph alias).
func (l *loader) decodeDAG(e entry) {
	m, ok := l.mapping(e.val, e.path, dagKeys)
	if !ok {
		return
	}
	if g, ok := m["graph"]; ok {
		if _, n := m["nodes"]; n {
			l.errAt(g.key, g.path, "give nodes and edges either under dag or under dag.graph, not both")
			return
		}
		if _, n := m["edges"]; n {
			l.errAt(g.key, g.path, "give nodes and edges either under dag or under dag.graph, not both")
			return
		}
		if m, ok = l.mapping(g.val, g.path, graphKeys); !ok {
			return
		}
		e = g
	}
	nodes, ok := m["nodes"]
	if !ok || isNull(resolve(nodes.val)) {
		l.errAt(resolve(e.val), e.path, "missing required key \"nodes\"")
		return
	}
	seq := resolve(nodes.val)
	if seq.Kind != yaml.SequenceNode {
		l.errAt(seq, nodes.path, "want a list of nodes, got %s", describe(seq))
		return
	}
	if len(seq.Content) == 0 {
		l.errAt(seq, nodes.path, "the list of nodes is empty")
		return
	}
	for i, item := range seq.Content {
		l.decodeNode(item, index(nodes.path, i), nodeKeys, "", 0)
	}
	edges, ok := m["edges"]
	if !ok || isNull(resolve(edges.val)) {
		return
	}
	eseq := resolve(edges.val)
	if eseq.Kind != yaml.SequenceNode {
		l.errAt(eseq, edges.path, "want a list of edges, got %s", describe(eseq))
		return
	}
	for i, item := range eseq.Content {
		l.decodeEdge(item, index(edges.path, i))
	}
}

// decodeNode decodes a dag node or a classic component reference. want is
// the node kind a classic slot requires (0: any); autoID names a classic
// component that gives no id.
// It returns the node's id when the node joined the graph.
func (l *loader) decodeNode(item *yaml.Node, path string, keys []string, autoID string, want engine.NodeKind) (string, bool) {
	item = resolve(item)
	m, ok := l.mapping(item, path, keys)
	if !ok {
		return "", false
	}
	if isNull(item) {
		l.errAt(item, path, "want a mapping with %s, got null", strings.Join(requiredOf(keys), " and "))
		return "", false
	}
	ns := &NodeSpec{File: l.fileOf(item), Line: item.Line, Column: item.Column, Path: path}
	okNode := true
	if v, ok := m["id"]; ok {
		if s, ok := l.str(v); ok {
			if err := checkID(s); err != nil {
				l.errAt(v.val, v.path, "%v", err)
				okNode = false
			} else if first, dup := l.ids[s]; dup {
				l.errAt(v.val, v.path, "duplicate node id %q (first used by %s)", s, first)
				okNode = false
			}
			ns.ID = s
		} else {
			okNode = false
		}
	} else if autoID == "" {
		l.errAt(item, path, "missing required key \"id\"")
		okNode = false
	} else {
		ns.ID = autoID
	}
	if okNode && ns.ID != "" {
		l.ids[ns.ID] = path
		l.idOrder = append(l.idOrder, ns.ID)
	}
	var spec *component.Spec
	typeText := ""
	if v, ok := m["type"]; ok {
		if s, ok := l.str(v); ok {
			typeText = s
			spec = l.lookupType(v, s, want)
		}
	} else {
		l.errAt(item, path, "missing required key \"type\"")
	}
	if v, ok := m["parallelism"]; ok {
		if p, ok := l.intRange(v, 1, engine.MaxParallelism); ok {
			ns.Parallelism = p
		}
	}
	if v, ok := m["on_error"]; ok {
		if s, ok := l.str(v); ok {
			pol, ok := engine.ParseErrorPolicy(s)
			if !ok || s == "" {
				l.errUnknownChoice(v, "on_error policy", s, "fail", "skip", "dead_letter")
			}
			ns.OnError = pol
		}
	}
	if v, ok := m["chain"]; ok {
		if b, ok := l.boolean(v); ok {
			ns.NoChain = !b
		}
	}
	params := m["params"]
	if spec == nil {
		if okNode && ns.ID != "" {
			// Keep the node in the graph check so its edges do not cascade
			// into more errors.
			l.placeholders[ns.ID] = kindOfType(typeText, want)
			if want == 0 && !strings.HasPrefix(typeText, "provider.") && !strings.HasPrefix(typeText, "operator.") && !strings.HasPrefix(typeText, "sink.") {
				// Without a kind, whether its neighbours connect is unknown.
				l.incomplete = true
			}
			ns.Type = typeText
			l.doc.Nodes = append(l.doc.Nodes, *ns)
			return ns.ID, true
		}
		return "", false
	}
	ns.Type, ns.Spec = spec.Type, spec
	ns.Params = l.decodeParams(spec, ns.ID, params, item, join(path, "params"))
	if okNode && ns.ID != "" {
		l.doc.Nodes = append(l.doc.Nodes, *ns)
		return ns.ID, true
	}
	return "", false
}

func requiredOf(keys []string) []string {
	var out []string
	for _, k := range keys {
		if k == "id" || k == "type" {
			out = append(out, k)
		}
	}
	return out
}

// checkID keeps ids usable in edges ("node.port") and --set paths.
func checkID(s string) error {
	if s == "" {
		return fmt.Errorf("node id is empty")
	}
	for _, r := range s {
		if r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			continue
		}
		return fmt.Errorf("node id %q may hold only letters, digits, _ and -", s)
	}
	return nil
}

func kindOfType(t string, want engine.NodeKind) engine.NodeKind {
	switch {
	case want != 0:
		return want
	case strings.HasPrefix(t, "provider."):
		return engine.KindSource
	case strings.HasPrefix(t, "sink."):
		return engine.KindSink
	}
	return engine.KindOperator
}

func (l *loader) lookupType(v entry, s string, want engine.NodeKind) *component.Spec {
	reg := component.Or(l.opts.Registry)
	spec, ok := reg.Lookup(s)
	if !ok {
		var cands []string
		for _, t := range reg.Types() {
			if want == 0 || kindOfType(t, 0) == want {
				cands = append(cands, t)
			}
		}
		msg := fmt.Sprintf("unknown component type %q", s)
		if sug := component.Suggest(s, cands); sug != "" {
			msg += fmt.Sprintf("; did you mean %q?", sug)
		} else {
			msg += "; `mdp components` lists the types"
		}
		l.errAt(v.val, v.path, "%s", msg)
		return nil
	}
	if want != 0 && spec.Kind != want {
		l.errAt(v.val, v.path, "%s is %s %s; this slot takes %s %s", s, article(spec.Kind), spec.Kind, article(want), want)
		return nil
	}
	return spec
}

func article(k engine.NodeKind) string {
	if k == engine.KindOperator {
		return "an"
	}
	return "a"
}

// decodeParams runs the component's strict decoder and maps its problems
// to Errors at the param's position.
func (l *loader) decodeParams(spec *component.Spec, id string, params entry, item *yaml.Node, path string) *component.Params {
	p, ferrs := component.Decode(spec, id, params.val)
	for _, fe := range ferrs {
		e := &Error{Path: path, Msg: fe.Msg, Line: fe.Line, Column: fe.Column}
		if fe.Key != "" {
			e.Path = join(path, fe.Key)
		}
		// The file a param came from: the value node for the key, else the
		// params mapping, else the node.
		at := params.val
		if at == nil {
			at = item
		}
		if v := lookup(params.val, strings.SplitN(fe.Key, ".", 2)[0]); v != nil && fe.Key != "" {
			at = v
		}
		e.File = l.fileOf(at)
		if e.Line == 0 && at != nil {
			e.Line, e.Column = at.Line, at.Column
		}
		l.errs = append(l.errs, e)
	}
	return p
}

// decodeEdge decodes [from, to] or {from, to, capacity, policy}.
func (l *loader) decodeEdge(item *yaml.Node, path string) {
	item = resolve(item)
	es := EdgeSpec{File: l.fileOf(item), Line: item.Line, Column: item.Column, Path: path}
	var fromN, toN *yaml.Node
	var fromPath, toPath string
	switch {
	case item.Kind == yaml.SequenceNode && len(item.Content) == 2 &&
		resolve(item.Content[0]).Kind == yaml.ScalarNode && resolve(item.Content[1]).Kind == yaml.ScalarNode:
		fromN, toN = resolve(item.Content[0]), resolve(item.Content[1])
		fromPath, toPath = path, path
	case item.Kind == yaml.MappingNode:
		m, _ := l.mapping(item, path, edgeKeys)
		f, okF := m["from"]
		t, okT := m["to"]
		if !okF || !okT {
			l.errAt(item, path, "an edge needs from and to")
			return
		}
		if _, ok := l.str(f); !ok {
			return
		}
		if _, ok := l.str(t); !ok {
			return
		}
		fromN, toN, fromPath, toPath = resolve(f.val), resolve(t.val), f.path, t.path
		if v, ok := m["capacity"]; ok {
			es.Capacity, _ = l.intRange(v, 1, engine.MaxQueueCapacity)
		}
		if v, ok := m["policy"]; ok {
			if s, ok := l.str(v); ok {
				pol, ok := engine.ParsePolicy(s)
				if !ok || s == "" {
					l.errUnknownChoice(v, "policy", s, "block", "drop_oldest", "drop_newest")
				}
				es.Policy = pol
			}
		}
	default:
		l.errAt(item, path, "want an edge as [from, to] or {from: a, to: b, capacity: 64, policy: block}, got %s", describe(item))
		return
	}
	es.From, es.FromPort, _ = strings.Cut(fromN.Value, ".")
	es.To, es.ToPort, _ = strings.Cut(toN.Value, ".")
	ok := true
	defer func() {
		if !ok {
			for _, id := range []string{es.From, es.To} {
				l.exempt[id] = true
				l.exempt[component.Suggest(id, l.idOrder)] = true
			}
		}
	}()
	if es.From == "" {
		l.errAt(fromN, fromPath, "edge source is empty")
		ok = false
	} else if _, known := l.ids[es.From]; !known {
		l.unknownNode(fromN, fromPath, es.From)
		ok = false
	}
	if es.To == "" {
		l.errAt(toN, toPath, "edge target is empty")
		ok = false
	} else if _, known := l.ids[es.To]; !known {
		l.unknownNode(toN, toPath, es.To)
		ok = false
	}
	if !ok {
		return
	}
	if _, isPH := l.placeholders[es.From]; isPH {
		l.phPorts = append(l.phPorts, [2]string{es.From, es.FromPort})
	}
	if _, isPH := l.placeholders[es.To]; isPH && es.ToPort != engine.PortMain {
		l.phInPorts = append(l.phInPorts, [2]string{es.To, es.ToPort})
	}
	l.doc.Edges = append(l.doc.Edges, es)
}

func (l *loader) unknownNode(n *yaml.Node, path, id string) {
	msg := fmt.Sprintf("unknown node %q", id)
	if s := component.Suggest(id, l.idOrder); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else if len(l.idOrder) > 0 {
		msg += "; nodes are: " + strings.Join(l.idOrder, ", ")
	}
	l.errAt(n, path, "%s", msg)
}

// checkGraph validates the graph as the engine will see it and places each
// problem at its node or edge.
func (l *loader) checkGraph() {
	d := l.doc
	hadErrs := len(l.errs) > 0
	g := &engine.Graph{}
	for i := range d.Nodes {
		ns := &d.Nodes[i]
		if kind, ph := l.placeholders[ns.ID]; ph {
			n := &engine.Node{ID: ns.ID, Type: ns.Type, Kind: kind, Accepts: md.KindAny, Ports: map[string]md.Kind{}}
			if kind != engine.KindSink {
				n.Ports[engine.PortMain] = md.KindNone
			}
			for _, pp := range l.phPorts {
				if pp[0] == ns.ID {
					n.Ports[pp[1]] = md.KindNone
				}
			}
			for _, pp := range l.phInPorts {
				if pp[0] == ns.ID {
					if len(n.Inputs) == 0 {
						n.Inputs = []engine.Input{{Name: engine.PortMain, Accepts: md.KindAny}}
					}
					n.Inputs = append(n.Inputs, engine.Input{Name: pp[1], Accepts: md.KindAny})
				}
			}
			g.Nodes = append(g.Nodes, n)
			continue
		}
		g.Nodes = append(g.Nodes, component.Node(ns.Spec, ns.Params, component.NodeOptions{ID: ns.ID, Parallelism: ns.Parallelism, OnError: ns.OnError, NoChain: ns.NoChain}))
	}
	for _, es := range d.Edges {
		g.Edges = append(g.Edges, &engine.Edge{From: es.From, FromPort: es.FromPort, To: es.To, ToPort: es.ToPort, Capacity: es.Capacity, Policy: es.Policy})
	}
	ges := onePerEdge(g.Validate())
	for _, ge := range ges {
		// A node next to a broken edge, of unknown type, or in an incomplete
		// chain is unconnected because of a mistake already reported.
		if ge.Edge < 0 && strings.Contains(ge.Msg, " is not connected to any ") {
			_, ph := l.placeholders[ge.Node]
			if ph || l.exempt[ge.Node] || l.incomplete {
				continue
			}
		}
		l.errs = append(l.errs, d.graphError(ge))
	}
	if hadErrs || len(ges) > 0 || len(l.placeholders) > 0 {
		return // what reaches a node is known only in a valid job
	}
	// Params that depend on what reaches the node (an expression over a
	// derived record's fields), now that the graph says what does.
	for i := range d.Nodes {
		ns := &d.Nodes[i]
		for _, fe := range component.CheckInputs(ns.Spec, ns.Params, g.Nodes[i]) {
			e := &Error{File: ns.File, Path: join(ns.Path, "params"), Msg: fe.Msg, Line: fe.Line, Column: fe.Column}
			if fe.Key != "" {
				e.Path = join(e.Path, fe.Key)
			}
			if e.Line == 0 {
				e.Line, e.Column = ns.Line, ns.Column
			}
			l.errs = append(l.errs, e)
		}
	}
}

// onePerEdge keeps the first problem with each edge: an edge into a source
// is also an edge of the wrong kind, but the first says what to fix.
func onePerEdge(ges []*engine.GraphError) []*engine.GraphError {
	seen := map[int]bool{}
	out := ges[:0:0]
	for _, ge := range ges {
		if ge.Edge >= 0 {
			if seen[ge.Edge] {
				continue
			}
			seen[ge.Edge] = true
		}
		out = append(out, ge)
	}
	return out
}
