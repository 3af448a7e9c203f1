package jobtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mdpio/mdp/md"
)

// maxShown bounds the records a diff lists.
const maxShown = 10

// compare checks the records a node gave against the expected ones and
// returns the differences, each on one line, prefixed with the node.
func compare(node string, want, got []map[string]any, tol float64, ordered bool) []string {
	var out []string
	say := func(format string, a ...any) { out = append(out, node+": "+fmt.Sprintf(format, a...)) }
	if ordered {
		for i := 0; i < min(len(want), len(got)); i++ {
			for _, d := range diffRecord(want[i], got[i], tol) {
				say("record %d: %s", i+1, d)
			}
		}
		if len(want) != len(got) {
			say("got %d records, want %d", len(got), len(want))
			for i := len(want); i < len(got) && i < len(want)+maxShown; i++ {
				say("  extra record %d: %s", i+1, text(got[i]))
			}
			for i := len(got); i < len(want) && i < len(got)+maxShown; i++ {
				say("  missing record %d: %s", i+1, text(want[i]))
			}
		}
		return out
	}
	used := make([]bool, len(got))
	var missing []int
	for i, w := range want {
		found := false
		for j, g := range got {
			if !used[j] && len(diffRecord(w, g, tol)) == 0 {
				used[j], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, i)
		}
	}
	for k, i := range missing {
		if k == maxShown {
			say("  … %d more missing", len(missing)-k)
			break
		}
		say("no record matches expected record %d: %s", i+1, text(want[i]))
	}
	extra := 0
	for j, g := range got {
		if used[j] {
			continue
		}
		if extra < maxShown {
			say("unexpected record: %s", text(g))
		}
		extra++
	}
	if extra > maxShown {
		say("  … %d more unexpected", extra-maxShown)
	}
	return out
}

// diffRecord lists the fields of want that got does not match.
func diffRecord(want, got map[string]any, tol float64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		if !ok {
			out = append(out, fmt.Sprintf("%s: missing, want %s", k, text(want[k])))
			continue
		}
		if !equal(want[k], g, tol) {
			out = append(out, fmt.Sprintf("%s: got %s, want %s", k, text(g), text(want[k])))
		}
	}
	return out
}

// equal compares an expected value (as YAML decoded it) with a received one
// (as JSON decoded it): numbers within tol, times as instants, the rest
// exactly.
func equal(want, got any, tol float64) bool {
	if wf, err := toFloat(want); err == nil {
		if _, isText := want.(string); !isText {
			gf, ok := got.(float64)
			return ok && (wf == gf || math.Abs(wf-gf) <= tol)
		}
	}
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		if !ok {
			return false
		}
		if w == g {
			return true
		}
		wt, err1 := md.ParseTime(w)
		gt, err2 := md.ParseTime(g)
		return err1 == nil && err2 == nil && wt == gt
	case time.Time:
		g, ok := got.(string)
		if !ok {
			return false
		}
		gt, err := md.ParseTime(g)
		return err == nil && gt == w.UnixNano()
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case nil:
		return got == nil
	}
	return text(want) == text(got)
}

// text renders a value or record compactly, as JSON.
func text(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(string(b))
}
