package server

import (
	"fmt"
	"testing"
)

// A bar re-emitted with update replaces the kept bar of its start; the
// history keeps the last TapHistory records.
func TestTapHistoryReplacesUpdatesAndKeepsTheLast(t *testing.T) {
	var h history
	for i := range TapHistory + 10 {
		h.add(entry{key: int64(i), data: []byte(fmt.Sprint(i))}, true)
	}
	h.add(entry{key: TapHistory + 5, data: []byte("update")}, true)
	h.add(entry{key: 5, data: []byte("too old")}, true) // no longer kept: appended as new
	if len(h.recs) != TapHistory || h.recs[0].key != 11 || string(h.recs[TapHistory-6].data) != "update" || string(h.recs[TapHistory-1].data) != "too old" {
		t.Fatalf("history: %d records, first %d, [-6] %s, last %s", len(h.recs), h.recs[0].key, h.recs[TapHistory-6].data, h.recs[TapHistory-1].data)
	}
}

// A client that falls more than TapHistory records behind holds nothing
// more and is sent the history afresh.
func TestTapSlowClientIsResynced(t *testing.T) {
	c := &tapClient{symbol: "X", signal: make(chan struct{}, 1)}
	for i := range TapHistory {
		c.push([]byte(fmt.Sprint(i)))
	}
	if c.resync || len(c.pending) != TapHistory {
		t.Fatalf("resync %v pending %d", c.resync, len(c.pending))
	}
	c.push([]byte("one more"))
	c.push([]byte("and another"))
	if !c.resync || c.pending != nil {
		t.Fatalf("after overflow: resync %v pending %d", c.resync, len(c.pending))
	}
}
