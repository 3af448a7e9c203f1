package docgen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/mdpio/mdp/operator/quality"
)

// Reason is one reason a node counts records as dropped or counts an error
// under (engine.NodeStats.Drop and Error): the names status, the end-of-job
// summary and the mdp_node_dropped_total / mdp_node_errors_total series
// carry.
type Reason struct {
	// Name is the reason as counted; a family whose suffix is computed is
	// written with the suffix in angle brackets (unconnected_port_<port>).
	Name string
	// Kind is "drop" or "error".
	Kind string
	// Packages are the packages that count it, relative to the module root.
	Packages []string
}

// dynamicReasons are the call sites that count a reason computed at run
// time, which the source scan cannot follow, with every value they can
// produce: keyed by the package and the argument as written. The scan
// fails on a dynamic call site not listed here, so a new one is listed
// when it is written.
var dynamicReasons = map[string]func() []string{
	// engine's ports count what an unconnected port would have sent.
	"engine p.dropKey": func() []string { return []string{"unconnected_port", "unconnected_port_<port>"} },
	// operator.quality counts each failed check under its own name.
	"operator/quality r.String()": func() []string {
		var out []string
		for r := quality.NonFinite; ; r++ {
			name, ok := qualityName(r)
			if !ok || name == "" {
				return out
			}
			out = append(out, name)
		}
	},
}

// qualityName is r's counter name, false past the last reason.
func qualityName(r quality.Reason) (name string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return r.String(), true
}

// sourceRoot is the module root, found from this file's path (the
// generator and its test run from the source tree).
func sourceRoot() (string, error) {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		return "", fmt.Errorf("docgen: cannot locate the source tree")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("docgen: module root: %w", err)
	}
	return root, nil
}

// pkgSrc is one package's parsed non-test files.
type pkgSrc struct {
	dir    string // relative to the module root, slash-separated
	files  []*ast.File
	consts map[string]ast.Expr // package-level constants by name
	stats  map[string]bool     // names declared or assigned as *engine.NodeStats
	// assigns are the (variable, last name of the value) pairs of the
	// package's assignments: st := s.stats makes st a NodeStats too.
	assigns [][2]string
}

// reasonScan walks the module's packages.
type reasonScan struct {
	fset    *token.FileSet
	pkgs    map[string]*pkgSrc // by import path
	module  string
	found   map[string]*Reason // by kind + name
	errs    []string
	visited map[string]bool // forwarders already followed
}

// Reasons returns every drop and error reason the module's code counts,
// found by reading its source: each call of a NodeStats' Drop or Error
// whose reason is a constant, a local variable assigned constants, or a
// parameter of a function whose callers pass constants (followed to
// them), plus the computed ones in dynamicReasons.
func Reasons() ([]Reason, error) {
	root, err := sourceRoot()
	if err != nil {
		return nil, err
	}
	s := &reasonScan{fset: token.NewFileSet(), pkgs: map[string]*pkgSrc{}, module: "github.com/mdpio/mdp",
		found: map[string]*Reason{}, visited: map[string]bool{}}
	if err := s.load(root); err != nil {
		return nil, err
	}
	for _, p := range s.sortedPkgs() {
		for grew := true; grew; {
			grew = false
			for _, a := range p.assigns {
				if p.stats[a[1]] && !p.stats[a[0]] {
					p.stats[a[0]], grew = true, true
				}
			}
		}
		for _, f := range p.files {
			s.scanFile(p, f)
		}
	}
	if len(s.errs) > 0 {
		sort.Strings(s.errs)
		return nil, fmt.Errorf("docgen: reasons the source scan cannot resolve (list their values in dynamicReasons):\n%s", strings.Join(s.errs, "\n"))
	}
	out := make([]Reason, 0, len(s.found))
	for _, r := range s.found {
		sort.Strings(r.Packages)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (s *reasonScan) sortedPkgs() []*pkgSrc {
	paths := make([]string, 0, len(s.pkgs))
	for p := range s.pkgs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]*pkgSrc, len(paths))
	for i, p := range paths {
		out[i] = s.pkgs[p]
	}
	return out
}

// load parses every non-test Go file outside testdata, scripts, cmd and
// internal test helpers' test files.
func (s *reasonScan) load(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(s.fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		imp := s.module + "/" + rel
		p := s.pkgs[imp]
		if p == nil {
			p = &pkgSrc{dir: rel, consts: map[string]ast.Expr{}, stats: map[string]bool{"Stats": true}}
			s.pkgs[imp] = p
		}
		p.files = append(p.files, f)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						p.consts[n.Name] = vs.Values[i]
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Field:
				if isNodeStatsType(n.Type) {
					for _, name := range n.Names {
						p.stats[name.Name] = true
					}
				}
			case *ast.ValueSpec:
				if n.Type != nil && isNodeStatsType(n.Type) {
					for _, name := range n.Names {
						p.stats[name.Name] = true
					}
				}
			case *ast.AssignStmt:
				for i, r := range n.Rhs {
					if id, ok := n.Lhs[min(i, len(n.Lhs)-1)].(*ast.Ident); ok && lastName(r) != "" {
						p.assigns = append(p.assigns, [2]string{id.Name, lastName(r)})
					}
				}
			}
			return true
		})
		return nil
	})
}

// isNodeStatsType reports whether t is *engine.NodeStats (or *NodeStats
// inside the engine).
func isNodeStatsType(t ast.Expr) bool {
	star, ok := t.(*ast.StarExpr)
	if !ok {
		return false
	}
	switch x := star.X.(type) {
	case *ast.Ident:
		return x.Name == "NodeStats"
	case *ast.SelectorExpr:
		return x.Sel.Name == "NodeStats"
	}
	return false
}

// lastName is the last identifier of a receiver expression (o.stats ->
// stats, st -> st).
func lastName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}

// scanFile records the reasons of every Drop and Error call on a
// NodeStats in f.
func (s *reasonScan) scanFile(p *pkgSrc, f *ast.File) {
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Drop" && sel.Sel.Name != "Error") || !p.stats[lastName(sel.X)] {
				return true
			}
			kind := "drop"
			if sel.Sel.Name == "Error" {
				kind = "error"
			}
			s.resolve(p, f, fd, call.Args[0], kind, 0)
			return true
		})
	}
}

// resolve records the values arg can take, following locals and
// parameters up to a few calls deep.
func (s *reasonScan) resolve(p *pkgSrc, f *ast.File, fd *ast.FuncDecl, arg ast.Expr, kind string, depth int) {
	if v, ok := s.constant(p, f, arg); ok {
		s.add(v, kind, p.dir)
		return
	}
	if be, ok := arg.(*ast.BinaryExpr); ok && be.Op == token.ADD {
		if v, ok := s.constant(p, f, be.X); ok {
			s.add(v+"<"+exprText(s.fset, be.Y)+">", kind, p.dir)
			return
		}
	}
	if key := p.dir + " " + exprText(s.fset, arg); dynamicReasons[key] != nil {
		for _, v := range dynamicReasons[key]() {
			s.add(v, kind, p.dir)
		}
		return
	}
	if id, ok := arg.(*ast.Ident); ok && depth < 4 {
		if idx := paramIndex(fd, id.Name); idx >= 0 {
			s.forward(p, fd, idx, kind, depth)
			return
		}
		if vals, ok := s.localValues(p, f, fd, id.Name); ok {
			for _, v := range vals {
				s.add(v, kind, p.dir)
			}
			return
		}
	}
	s.errs = append(s.errs, fmt.Sprintf("%s: %s reason %s", s.fset.Position(arg.Pos()), kind, exprText(s.fset, arg)))
}

func (s *reasonScan) add(name, kind, dir string) {
	key := kind + " " + name
	r := s.found[key]
	if r == nil {
		r = &Reason{Name: name, Kind: kind}
		s.found[key] = r
	}
	for _, d := range r.Packages {
		if d == dir {
			return
		}
	}
	r.Packages = append(r.Packages, dir)
}

// forward follows a reason passed in as parameter idx of fd to the calls
// of fd: in its own package, and for an exported name in the packages
// that import it.
func (s *reasonScan) forward(p *pkgSrc, fd *ast.FuncDecl, idx int, kind string, depth int) {
	name := fd.Name.Name
	key := p.dir + "." + name + "#" + strconv.Itoa(idx)
	if s.visited[key] {
		return
	}
	s.visited[key] = true
	calls := 0
	for _, q := range s.pkgs {
		if q != p && (!ast.IsExported(name) || !imports(q, s.module+"/"+p.dir)) {
			continue
		}
		for _, f := range q.files {
			for _, decl := range f.Decls {
				cfd, ok := decl.(*ast.FuncDecl)
				if !ok || cfd.Body == nil {
					continue
				}
				ast.Inspect(cfd.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok || len(call.Args) <= idx {
						return true
					}
					var called string
					switch fn := call.Fun.(type) {
					case *ast.SelectorExpr:
						called = fn.Sel.Name
					case *ast.Ident:
						called = fn.Name
					}
					if called != name {
						return true
					}
					calls++
					s.resolve(q, f, cfd, call.Args[idx], kind, depth+1)
					return true
				})
			}
		}
	}
	if calls == 0 {
		s.errs = append(s.errs, fmt.Sprintf("%s: %s reason forwarded by %s, which nothing calls", s.fset.Position(fd.Pos()), kind, name))
	}
}

// imports reports whether any file of q imports path.
func imports(q *pkgSrc, path string) bool {
	for _, f := range q.files {
		for _, is := range f.Imports {
			if v, _ := strconv.Unquote(is.Path.Value); v == path {
				return true
			}
		}
	}
	return false
}

// paramIndex is the position of the parameter called name in fd, or -1.
func paramIndex(fd *ast.FuncDecl, name string) int {
	i := 0
	for _, fl := range fd.Type.Params.List {
		if len(fl.Names) == 0 {
			i++
			continue
		}
		for _, n := range fl.Names {
			if n.Name == name {
				return i
			}
			i++
		}
	}
	return -1
}

// localValues returns the constants assigned to the local variable name in
// fd, false when any assignment is not a constant.
func (s *reasonScan) localValues(p *pkgSrc, f *ast.File, fd *ast.FuncDecl, name string) ([]string, bool) {
	var vals []string
	ok := true
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		as, isAssign := n.(*ast.AssignStmt)
		if !isAssign || len(as.Lhs) != len(as.Rhs) {
			return true
		}
		for i, l := range as.Lhs {
			if id, isIdent := l.(*ast.Ident); isIdent && id.Name == name {
				v, isConst := s.constant(p, f, as.Rhs[i])
				if !isConst {
					ok = false
					return false
				}
				vals = append(vals, v)
			}
		}
		return true
	})
	return vals, ok && len(vals) > 0
}

// constant evaluates a string constant expression: literals, package
// constants (of this or another module package) and their sums.
func (s *reasonScan) constant(p *pkgSrc, f *ast.File, e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(x.Value)
		return v, err == nil
	case *ast.ParenExpr:
		return s.constant(p, f, x.X)
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", false
		}
		a, ok1 := s.constant(p, f, x.X)
		b, ok2 := s.constant(p, f, x.Y)
		return a + b, ok1 && ok2
	case *ast.Ident:
		if v, ok := p.consts[x.Name]; ok {
			return s.constant(p, f, v)
		}
	case *ast.SelectorExpr:
		pkgID, ok := x.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		for _, is := range f.Imports {
			path, _ := strconv.Unquote(is.Path.Value)
			local := filepath.Base(path)
			if is.Name != nil {
				local = is.Name.Name
			}
			if local != pkgID.Name {
				continue
			}
			if q := s.pkgs[path]; q != nil {
				if v, ok := q.consts[x.Sel.Name]; ok {
					return s.constant(q, q.files[0], v)
				}
			}
		}
	}
	return "", false
}

// exprText is e as written.
func exprText(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	if err := printer.Fprint(&b, fset, e); err != nil {
		return fmt.Sprintf("%T", e)
	}
	return b.String()
}

// reasonsReference is the table of every drop and error reason.
func reasonsReference() ([]byte, error) {
	rs, err := Reasons()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Drop and error reasons\n\n")
	b.WriteString("Generated from the source (`go generate ./internal/docgen`); do not edit. Every reason a node counts\n")
	b.WriteString("records as dropped under (`mdp_node_dropped_total{reason}`, status `drops`) or counts an error under\n")
	b.WriteString("(`mdp_node_errors_total{reason}`, status `errors`), with the packages that count it. What each means\n")
	b.WriteString("and what to do: [troubleshooting](../troubleshooting.md#drop-reasons).\n")
	for _, kind := range []string{"drop", "error"} {
		title := "Drop reasons"
		if kind == "error" {
			title = "Error reasons"
		}
		fmt.Fprintf(&b, "\n## %s\n\n| reason | counted by |\n|---|---|\n", title)
		for _, r := range rs {
			if r.Kind == kind {
				fmt.Fprintf(&b, "| `%s` | %s |\n", r.Name, "`"+strings.Join(r.Packages, "`, `")+"`")
			}
		}
	}
	return []byte(b.String()), nil
}
