package busfmt

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
)

// TestOnErrorValidated: dead_letter needs dead_letter_path, and the path
// applies only with dead_letter; both errors are at the key.
func TestOnErrorValidated(t *testing.T) {
	for _, c := range []struct {
		params map[string]any
		key    string
		want   string
	}{
		{map[string]any{"on_error": "dead_letter"}, "dead_letter_path", "on_error: dead_letter needs dead_letter_path (a JSON-lines file)"},
		{map[string]any{"dead_letter_path": "/tmp/x.jsonl"}, "dead_letter_path", "dead_letter_path applies only with on_error: dead_letter"},
		{map[string]any{"on_error": "fail", "dead_letter_path": "/tmp/x.jsonl"}, "dead_letter_path", "dead_letter_path applies only with on_error: dead_letter"},
	} {
		_, _, err := sourceReader(t, c.params)
		var fe *component.FieldError
		if !errors.As(err, &fe) || fe.Key != c.key || fe.Msg != c.want {
			t.Errorf("%v: error %v, want %q at %s", c.params, err, c.want, c.key)
		}
	}
	if _, err := component.NewParams(sourceSpec(), map[string]any{"on_error": "skip"}); err == nil || !strings.Contains(err.Error(), "on_error") {
		t.Errorf("on_error: skip accepted (%v)", err)
	}
}

// TestDeadLetterLines: a refused frame is written whole in base64 (at most
// 4 KiB of it), refused json and csv rows one line each with their text,
// and on_error: fail names the reason and the origin.
func TestDeadLetterLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	kafka := &Origin{Bus: "kafka", Topic: "md.trades", Partition: 0, Offset: 7, HasOffset: true}
	decode := func(r *Reader, msg []byte, o *Origin) error {
		t.Helper()
		b := md.NewBatch(md.KindTrade)
		defer b.Release()
		err := r.Decode(msg, b)
		if err == nil {
			t.Fatalf("%q decoded", msg)
		}
		return r.Malformed(err, msg, o)
	}
	r, _, err := sourceReader(t, map[string]any{"on_error": "dead_letter", "dead_letter_path": path})
	if err != nil {
		t.Fatal(err)
	}
	if err := decode(r, []byte("not a frame at all"), kafka); err != nil {
		t.Fatal(err)
	}
	long := append([]byte("MD"), make([]byte, 5000)...)
	if err := decode(r, long, &Origin{Bus: "redis", Stream: "s", ID: "1-1"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r, _, err = sourceReader(t, map[string]any{"on_error": "dead_letter", "dead_letter_path": path, "format": "csv"})
	if err != nil {
		t.Fatal(err)
	}
	csv := "ts,symbol,provider,price,size,side,trade_id,seq,ingest_ts\n" +
		"2023-11-14T22:13:20Z,A,p,1,1,buy,1,1,2023-11-14T22:13:20Z\n" +
		"2023-11-14T22:13:20Z,A,p,x,1,buy,2,2,2023-11-14T22:13:20Z\n" +
		"short\n"
	if err := decode(r, []byte(csv), &Origin{Bus: "nats", Stream: "S", Subject: "md.t", Seq: 3}); err != nil {
		t.Fatal(err)
	}
	if err := decode(r, []byte("nope,header\n1,2\n"), &Origin{Bus: "mqtt", Topic: "a/b"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bus":"kafka","topic":"md.trades","partition":0,"offset":7,"reason":"bad_magic","raw_base64":"` + base64.StdEncoding.EncodeToString([]byte("not a frame at all")) + `"}` + "\n" +
		`{"bus":"redis","stream":"s","id":"1-1","reason":"bad_version","raw_base64":"` + base64.StdEncoding.EncodeToString(long[:MaxDeadLetterBytes]) + `","raw_bytes":5002}` + "\n" +
		`{"bus":"nats","stream":"S","subject":"md.t","seq":3,"reason":"invalid_field","line":3,"row":"2023-11-14T22:13:20Z,A,p,x,1,buy,2,2,2023-11-14T22:13:20Z"}` + "\n" +
		`{"bus":"nats","stream":"S","subject":"md.t","seq":3,"reason":"short_row","line":4,"row":"short"}` + "\n" +
		`{"bus":"mqtt","topic":"a/b","reason":"bad_header","raw":"nope,header\n1,2\n"}` + "\n"
	if string(got) != want {
		t.Fatalf("dead-letter file:\n%s\nwant:\n%s", got, want)
	}

	r, _, err = sourceReader(t, map[string]any{"on_error": "fail", "format": "json"})
	if err != nil {
		t.Fatal(err)
	}
	err = decode(r, []byte("{}\n{\"ts\":\"x\"}\n"), &Origin{Bus: "rabbitmq", Queue: "q"})
	if err == nil || err.Error() != `rabbitmq queue q: malformed row at line 1 of the message (missing_field: empty or missing ts); on_error is fail` {
		t.Fatalf("fail: %v", err)
	}
	r, _, _ = sourceReader(t, map[string]any{"on_error": "fail"})
	err = decode(r, []byte("not a frame at all"), kafka)
	if err == nil || !strings.HasPrefix(err.Error(), "kafka topic md.trades partition 0 offset 7: malformed message (bad_magic: ") {
		t.Fatalf("fail: %v", err)
	}
}
