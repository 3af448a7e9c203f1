// Package kafkaconn holds what provider.kafka and sink.kafka share about
// reaching a Kafka cluster through franz-go: the connection params (seed
// brokers, TLS, SASL PLAIN and SCRAM, client id, backoff) with their
// validation, the client options built from them, and the node's
// accounting: a failed broker connection counts as a node error (Health
// DEGRADED) and clears the kafka_connected gauge; the client itself
// retries with the retry package's backoff (exponential, full jitter).
package kafkaconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/retry"
)

// mask replaces a secret in what is shown.
const mask = "xxxxx"

// Options say how to reach the cluster.
type Options struct {
	Brokers  []string
	ClientID string
	Backoff  retry.Backoff

	TLS           *tls.Config // nil: plain TCP
	SASLMechanism string      // "", plain, scram-sha-256, scram-sha-512
	SASLUser      string
	SASLPassword  string
}

// Fields are the connection params both components take.
func Fields() []component.Field {
	return append(busio.TLSFields(), []component.Field{
		{Name: "brokers", Type: component.Strings, Default: []any{"127.0.0.1:9092"},
			Description: "Seed brokers, host:port; the client discovers the rest of the cluster from them."},
		{Name: "client_id", Type: component.String, Default: "mdp",
			Description: "Client id the brokers see (quotas, logs)."},
		{Name: "sasl_mechanism", Type: component.String, Default: "none", Enum: []string{"none", "plain", "scram-sha-256", "scram-sha-512"},
			Description: "SASL authentication: PLAIN (use it with TLS: the password travels as is) or SCRAM."},
		{Name: "sasl_username", Type: component.String,
			Description: "SASL user name."},
		{Name: "sasl_password", Type: component.String, Secret: true,
			Description: "SASL password (a secret: masked in status and logs)."},
		{Name: "reconnect_backoff", Type: component.Duration, Default: "100ms", Min: component.Bound(0.001), Max: component.Bound(60),
			Description: "First retry step after a failed request or connection; each failure doubles it up to max_reconnect_backoff, the wait a random part of the step (full jitter). The client retries forever; while no broker answers the node counts errors and shows DEGRADED."},
		{Name: "max_reconnect_backoff", Type: component.Duration, Default: "5s", Min: component.Bound(0.001), Max: component.Bound(600),
			Description: "Cap of the retry step."},
	}...)
}

// OptionsFrom reads Fields (the TLS files are read here; Validate has
// checked them).
func OptionsFrom(p *component.Params) (Options, error) {
	o := Options{Brokers: p.Strings("brokers"), ClientID: p.String("client_id"),
		Backoff:  retry.Backoff{Base: p.Duration("reconnect_backoff"), Max: p.Duration("max_reconnect_backoff")},
		SASLUser: p.String("sasl_username"), SASLPassword: p.String("sasl_password")}
	if m := p.String("sasl_mechanism"); m != "none" {
		o.SASLMechanism = m
	}
	var err error
	if o.TLS, err = busio.TLSConfig(p, false); err != nil {
		return o, p.Errorf("tls", "%v", err)
	}
	return o, nil
}

// Validate checks the connection params (errors name the param); the TLS
// files are read and parsed (busio.ValidateTLS).
func Validate(p *component.Params) error {
	var errs []error
	if len(p.Strings("brokers")) == 0 {
		errs = append(errs, p.Errorf("brokers", "at least one seed broker (host:port) is needed"))
	}
	for _, b := range p.Strings("brokers") {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			errs = append(errs, p.Errorf("brokers", "broker %q is not host:port", b))
		}
	}
	if err := busio.ValidateTLS(p, false); err != nil {
		errs = append(errs, err)
	}
	mech := p.String("sasl_mechanism")
	if mech == "none" {
		for _, n := range []string{"sasl_username", "sasl_password"} {
			if p.Has(n) {
				errs = append(errs, p.Errorf(n, "%s applies only with sasl_mechanism plain, scram-sha-256 or scram-sha-512", n))
			}
		}
	} else {
		if p.String("sasl_username") == "" {
			errs = append(errs, p.Errorf("sasl_username", "sasl_mechanism %s needs sasl_username", mech))
		}
		if p.String("sasl_password") == "" {
			errs = append(errs, p.Errorf("sasl_password", "sasl_mechanism %s needs sasl_password", mech))
		}
	}
	return errors.Join(errs...)
}

// Masked is the broker list with the SASL user, as shown in logs and
// errors (never the password).
func (o Options) Masked() string {
	s := strings.Join(o.Brokers, ",")
	if o.SASLMechanism != "" {
		s = o.SASLUser + ":" + mask + "@" + s
	}
	return s
}

// State is a client's connection accounting for its node.
type State struct {
	up     atomic.Bool
	st     *engine.NodeStats
	log    *slog.Logger
	masked string
	failed atomic.Int64
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (s *State) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		if !s.up.Swap(true) && s.log != nil && s.failed.Load() > 0 {
			s.log.Info("kafka broker reachable again", "brokers", s.masked)
		}
		return
	}
	s.up.Store(false)
	n := s.failed.Add(1)
	msg := fmt.Sprintf("connecting to broker %s:%d: %v", meta.Host, meta.Port, err)
	if s.st != nil {
		s.st.Error("connect_failed", msg)
	}
	if s.log != nil && (n <= 3 || n%100 == 0) {
		s.log.Warn("kafka broker unreachable; retrying", "brokers", s.masked, "failures", n, "err", err)
	}
}

// Up reports whether the last connection attempt succeeded.
func (s *State) Up() bool { return s.up.Load() }

// ClientOpts are the kgo options for o, with the node's accounting hooked
// in (the kafka_connected gauge is registered on nc's metrics).
func ClientOpts(o Options, nc *engine.NodeContext) ([]kgo.Opt, *State) {
	st := &State{st: nc.Stats, log: nc.Logger, masked: o.Masked()}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID(o.ClientID),
		kgo.RetryBackoffFn(func(tries int) time.Duration { return o.Backoff.Delay(tries) }),
		kgo.WithHooks(st),
	}
	if o.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(o.TLS.Clone()))
	}
	switch o.SASLMechanism {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: o.SASLUser, Pass: o.SASLPassword}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.SASLUser, Pass: o.SASLPassword}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.SASLUser, Pass: o.SASLPassword}.AsSha512Mechanism()))
	}
	nc.Metrics().GaugeFunc("kafka_connected", "1 while the node's last Kafka broker connection attempt succeeded, else 0.", func() float64 {
		if st.Up() {
			return 1
		}
		return 0
	}, engine.MaxAcrossInstances())
	return opts, st
}
