// Package testenv decides what a test does when a service it needs (a
// PostgreSQL server, a cluster tool) is missing: locally it skips with a
// message that says how to provide the service; under CI (CI=true, or any
// non-empty CI) it fails, so a CI run can never report "ok" for tests that
// did not run.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// PostgresHint says how to give the tests a PostgreSQL server.
const PostgresHint = "start one on 127.0.0.1:5432 with trust auth for postgres and a database test " +
	"(README, Fresh machine: apt-get install postgresql; pg_ctlcluster --skip-systemctl-redirect <version> main start; " +
	"createdb -h 127.0.0.1 -U postgres test), or point MDP_TEST_PG_DSN at one"

// NATSHint says how to give the tests a NATS server with JetStream.
const NATSHint = "start nats-server with JetStream on 127.0.0.1:4222 (apt-get install nats-server; " +
	"nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server), or point MDP_TEST_NATS_URL at one"

// inCI reports whether the tests run under CI.
func inCI() bool {
	return os.Getenv("CI") != "" && os.Getenv("CI") != "false" && os.Getenv("CI") != "0"
}

// Missing ends the test because service is unavailable (why says what
// failed): a skip naming hint locally, a failure under CI.
func Missing(tb testing.TB, service, why, hint string) {
	tb.Helper()
	msg := fmt.Sprintf("%s unavailable: %s", service, why)
	if inCI() {
		tb.Fatalf("%s (CI=%s: a service test must run, not skip)", msg, os.Getenv("CI"))
		return
	}
	tb.Skipf("%s; to run this test, %s", msg, hint)
}
