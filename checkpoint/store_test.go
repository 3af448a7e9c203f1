package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
)

func ck(id int64) *engine.Checkpoint {
	return &engine.Checkpoint{Format: engine.CheckpointFormat, ID: id, Job: "j", Graph: "g", Time: time.Unix(id, 0).UTC(),
		Nodes: []engine.NodeState{{ID: "src", Type: "provider.synthetic", Instances: []engine.InstanceState{
			{State: []byte{byte(id), 0, 255}, Watermark: id * 1000, Complete: true}}}}}
}

// Save writes one file per checkpoint, keeps the newest keep, leaves no
// temporary file, and Latest and Load read back exactly what was saved.
func TestSaveKeepsTheNewestAndReadsBack(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "b")
	d, err := Open("file://"+dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 5; id++ {
		n, err := d.Save(ctx, ck(id))
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, FileName(id)))
		if err != nil || st.Size() != n {
			t.Fatalf("checkpoint %d: Save said %d bytes, the file: %v %v", id, n, st, err)
		}
	}
	ids, err := d.IDs()
	if err != nil || !slices.Equal(ids, []int64{5, 4, 3}) {
		t.Fatalf("ids %v (%v), want [5 4 3]", ids, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Fatalf("%d files in the store, want the 3 checkpoints and no temporary", len(ents))
	}
	got, err := d.Latest(ctx)
	if err != nil || got.ID != 5 || !bytes.Equal(got.Nodes[0].Instances[0].State, []byte{5, 0, 255}) || got.Nodes[0].Instances[0].Watermark != 5000 {
		t.Fatalf("latest %+v (%v)", got, err)
	}
	if got, err := d.Load(ctx, 4); err != nil || got.ID != 4 {
		t.Fatalf("load 4: %+v (%v)", got, err)
	}
	if _, err := d.Load(ctx, 1); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("load of a pruned checkpoint: %v", err)
	}
}

// A torn (truncated) newest checkpoint, one of another format and one with
// an incomplete instance are each skipped with a warning, and Latest takes
// the newest that reads back whole; an empty store says ErrNone.
func TestLatestSkipsWhatDoesNotReadBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var logs bytes.Buffer
	d, err := Open(dir, 10, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Latest(ctx); !errors.Is(err, ErrNone) {
		t.Fatalf("empty store: %v, want ErrNone", err)
	}
	for id := int64(1); id <= 4; id++ {
		c := ck(id)
		switch id {
		case 2:
			c.Format = engine.CheckpointFormat + 1
		case 3:
			c.Nodes[0].Instances[0].Complete = false
		}
		if _, err := d.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	newest := filepath.Join(dir, FileName(4))
	data, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newest, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := d.Latest(ctx)
	if err != nil || got.ID != 1 {
		t.Fatalf("latest %+v (%v), want checkpoint 1", got, err)
	}
	for _, want := range []string{"id=4", "torn or corrupt", "id=3", "incomplete", "id=2", "this mdp reads format"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the warnings lack %q:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "checkpoint unreadable; using the one before it"); n != 3 {
		t.Errorf("%d warnings, want 3:\n%s", n, logs.String())
	}
}

// Resolve takes an id in the store or a file path; ParseLocation takes a
// path or a file:// URL and refuses other schemes.
func TestResolveAndLocations(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open(dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Save(ctx, ck(7)); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"7", filepath.Join(dir, FileName(7))} {
		if c, err := Resolve(ctx, d, from); err != nil || c.ID != 7 {
			t.Errorf("resolve %q: %+v (%v)", from, c, err)
		}
	}
	if _, err := Resolve(ctx, d, "8"); err == nil {
		t.Error("resolve of a missing id succeeded")
	}
	for loc, want := range map[string]string{"a/b": "a/b", "file:///x/y": "/x/y"} {
		if got, err := ParseLocation(loc); err != nil || got != want {
			t.Errorf("location %q: %q (%v), want %q", loc, got, err, want)
		}
	}
	for _, loc := range []string{"", "nats://127.0.0.1:4222/bucket"} {
		if _, err := ParseLocation(loc); err == nil {
			t.Errorf("location %q accepted", loc)
		}
	}
}

// A checkpoint's size decimals read back as saved, and a file written
// before checkpoints carried them (no size_decimals key) still reads, with
// none.
func TestSizeDecimalsReadBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open("file://"+dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ck(1)
	c.SizeDecimals = []engine.SymbolDecimals{{Provider: "tardis", Symbol: "BTC-USD", Decimals: 8}, {Provider: "tardis", Symbol: "ETH-USD", Decimals: 0}}
	if _, err := d.Save(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := d.Load(ctx, 1)
	if err != nil || !slices.Equal(got.SizeDecimals, c.SizeDecimals) {
		t.Fatalf("size decimals read back %+v (%v), want %+v", got, err, c.SizeDecimals)
	}
	old := `{"format":1,"id":2,"job":"j","graph":"g","time":"2026-01-01T00:00:00Z","duration_ns":5,` +
		`"nodes":[{"id":"src","type":"provider.synthetic","instances":[{"state":"AQ==","watermark":7,"complete":true}]}],"shape":[]}`
	if err := os.WriteFile(filepath.Join(dir, FileName(2)), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = d.Latest(ctx)
	if err != nil || got.ID != 2 || got.SizeDecimals != nil || got.Nodes[0].Instances[0].Watermark != 7 {
		t.Fatalf("a checkpoint without size decimals: %+v (%v)", got, err)
	}
}
