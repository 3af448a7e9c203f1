package config

import (
	"testing"
	"time"
)

const scaleoutGraph = `dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, store]
`

func TestScaleoutSection(t *testing.T) {
	doc, err := LoadBytes("job.yaml", []byte(scaleoutGraph+"scaleout: {nats: embedded, store: data/nats, partitions: 16}\n"), LoadOptions{Env: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := ScaleoutConfig{NATS: "embedded", Partitions: 16, Store: "data/nats", Sync: SyncAlways, Source: "src", Retention: Retention{MaxAge: 72 * time.Hour}, OutageLimit: time.Minute}
	if doc.Scaleout == nil || *doc.Scaleout != want {
		t.Fatalf("scaleout = %+v, want %+v", doc.Scaleout, want)
	}
	doc, err = LoadBytes("job.yaml", []byte(scaleoutGraph+"scaleout: {nats: \"nats://127.0.0.1:4222\"}\n"), LoadOptions{Env: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	want = ScaleoutConfig{NATS: "nats://127.0.0.1:4222", Partitions: 64, Sync: SyncAlways, Source: "src", Retention: Retention{MaxAge: 72 * time.Hour}, OutageLimit: time.Minute}
	if doc.Scaleout == nil || *doc.Scaleout != want {
		t.Fatalf("scaleout = %+v, want %+v", doc.Scaleout, want)
	}
	doc, err = LoadBytes("job.yaml", []byte(scaleoutGraph+"scaleout:\n  nats: embedded\n  store: d\n  retention: {max_age: 90m, max_bytes: 1_000_000, max_msgs: 500}\n"), LoadOptions{Env: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := doc.Scaleout.Retention, (Retention{MaxAge: 90 * time.Minute, MaxBytes: 1_000_000, MaxMsgs: 500}); got != want {
		t.Fatalf("retention = %+v, want %+v", got, want)
	}
	doc, err = LoadBytes("job.yaml", []byte(scaleoutGraph+"scaleout: {nats: embedded, store: d, records_per_message: 100}\n"), LoadOptions{Env: envMap(nil)})
	if err != nil || doc.Scaleout.RecordsPerMessage != 100 {
		t.Fatalf("records_per_message: %+v, %v", doc.Scaleout, err)
	}
	doc, err = LoadBytes("job.yaml", []byte(scaleoutGraph+"scaleout: {nats: embedded, store: d, outage_limit: 5m}\n"), LoadOptions{Env: envMap(nil)})
	if err != nil || doc.Scaleout.OutageLimit != 5*time.Minute {
		t.Fatalf("outage_limit: %+v, %v", doc.Scaleout, err)
	}
	doc, err = LoadBytes("job.yaml", []byte(scaleoutGraph), LoadOptions{Env: envMap(nil)})
	if err != nil || doc.Scaleout != nil {
		t.Fatalf("without the section: scaleout %+v, err %v", doc.Scaleout, err)
	}
}

func TestScaleoutErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"no nats", scaleoutGraph + "scaleout: {partitions: 4}\n",
			"job.yaml:7:11: scaleout: scaleout needs nats: embedded (a server inside mdp) or the URL of a NATS server with JetStream"},
		{"bad url", scaleoutGraph + "scaleout: {nats: \"http://x\", partitions: 4}\n",
			`job.yaml:7:18: scaleout.nats: want embedded or a nats:// or tls:// URL, got "http://x"`},
		{"partitions", scaleoutGraph + "scaleout:\n  nats: embedded\n  store: d\n  partitions: 0\n",
			"job.yaml:10:15: scaleout.partitions: must be at least 1, got 0"},
		{"embedded without store", scaleoutGraph + "scaleout: {nats: embedded}\n",
			"job.yaml:7:11: scaleout: scaleout with nats: embedded needs a store: the directory of the embedded server's stream"},
		{"store with url", scaleoutGraph + "scaleout: {nats: \"nats://h:4222\", store: d}\n",
			"job.yaml:7:42: scaleout.store: store is the embedded server's directory; with nats: nats://h:4222 the server keeps its own"},
		{"sync", scaleoutGraph + "scaleout: {nats: embedded, store: d, sync: alway}\n",
			`job.yaml:7:44: scaleout.sync: unknown sync policy "alway"; want always or interval (did you mean "always"?)`},
		{"max_age", scaleoutGraph + "scaleout: {nats: embedded, store: d, retention: {max_age: 10ms}}\n",
			"job.yaml:7:59: scaleout.retention.max_age: must be at least 100ms, got 10ms"},
		{"max_bytes", scaleoutGraph + "scaleout: {nats: embedded, store: d, retention: {max_bytes: -1}}\n",
			"job.yaml:7:61: scaleout.retention.max_bytes: must be at least 0, got -1"},
		{"retention key", scaleoutGraph + "scaleout: {nats: embedded, store: d, retention: {max_msg: 3}}\n",
			`job.yaml:7:50: scaleout.retention.max_msg: unknown key "max_msg"; did you mean "max_msgs"?`},
		{"records_per_message", scaleoutGraph + "scaleout: {nats: embedded, store: d, records_per_message: 70000}\n",
			"job.yaml:7:59: scaleout.records_per_message: must be at most 65536, got 70000"},
		{"outage_limit too short", scaleoutGraph + "scaleout: {nats: embedded, store: d, outage_limit: 500ms}\n",
			"job.yaml:7:52: scaleout.outage_limit: must be at least 1s, got 500ms"},
		{"outage_limit not a duration", scaleoutGraph + "scaleout:\n  nats: embedded\n  store: d\n  outage_limit: soon\n",
			`job.yaml:10:17: scaleout.outage_limit: invalid duration "soon" (examples: 500ms, 1s, 5m, 1h, 1d)`},
		{"unknown key", scaleoutGraph + "scaleout: {nats: embedded, store: d, partition: 3}\n",
			`job.yaml:7:38: scaleout.partition: unknown key "partition"; did you mean "partitions"?`},
		{"two sources", `dag:
  nodes:
    - {id: a, type: provider.test_trades}
    - {id: b, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[a, store], [b, store]]
scaleout: {nats: embedded, store: d}
`, "job.yaml:7:11: scaleout: scaleout runs jobs with one source node; this job has 2 (a, b)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("job.yaml", []byte(tc.src), LoadOptions{Env: envMap(nil)})
			if err == nil {
				t.Fatal("loaded without error")
			}
			if err.Error() != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestMessageRecordsDefault: the records a message default to 16384 only
// where every message costs an fsync (the embedded store, sync: always),
// and a given count wins everywhere.
func TestMessageRecordsDefault(t *testing.T) {
	for _, c := range []struct {
		section string
		want    int
	}{
		{"{nats: embedded, store: d}", SyncAlwaysRecordsPerMessage},
		{"{nats: embedded, store: d, sync: interval}", DefaultRecordsPerMessage},
		{"{nats: \"nats://127.0.0.1:4222\"}", DefaultRecordsPerMessage},
		{"{nats: embedded, store: d, records_per_message: 100}", 100},
		{"{nats: embedded, store: d, sync: interval, records_per_message: 65536}", 65536},
	} {
		doc, err := LoadBytes("job.yaml", []byte(scaleoutGraph+"scaleout: "+c.section+"\n"), LoadOptions{Env: envMap(nil)})
		if err != nil {
			t.Fatalf("%s: %v", c.section, err)
		}
		if got := doc.Scaleout.MessageRecords(); got != c.want {
			t.Errorf("%s: MessageRecords() = %d, want %d", c.section, got, c.want)
		}
	}
	if SyncAlwaysRecordsPerMessage != 16384 || DefaultRecordsPerMessage != 4096 {
		t.Fatalf("defaults %d and %d, the README says 16384 and 4096", SyncAlwaysRecordsPerMessage, DefaultRecordsPerMessage)
	}
}
