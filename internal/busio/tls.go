package busio

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/mdpio/mdp/component"
)

// TLSFields are the TLS params of a bus client. TLS is on with tls: true or
// when the URL's scheme says so (rediss, amqps, ssl/tls/mqtts).
func TLSFields() []component.Field {
	return []component.Field{
		{Name: "tls", Type: component.Bool, Default: false,
			Description: "Connect over TLS (also on when the URL's scheme is a TLS one: rediss://, amqps://, ssl:// or mqtts://)."},
		{Name: "tls_ca_file", Type: component.String, Path: true, Input: true,
			Description: "PEM file of the certificate authorities that sign the broker's certificate. Empty: the system's."},
		{Name: "tls_cert_file", Type: component.String, Path: true, Input: true,
			Description: "PEM client certificate, for brokers that authenticate clients by certificate (with tls_key_file)."},
		{Name: "tls_key_file", Type: component.String, Path: true, Input: true,
			Description: "PEM private key of tls_cert_file."},
		{Name: "tls_server_name", Type: component.String,
			Description: "Name the broker's certificate must carry. Empty: the URL's host."},
		{Name: "tls_insecure_skip_verify", Type: component.Bool, Default: false,
			Description: "Accept any broker certificate (tests only: it gives up the protection TLS is for)."},
	}
}

// tlsParams are the TLS params other than tls itself.
var tlsParams = []string{"tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_insecure_skip_verify"}

// ValidateTLS checks the TLS params: they apply only with TLS on (urlTLS:
// the URL's scheme asks for it), a certificate needs its key and the
// reverse, and the files are read and parsed, so a wrong path or a file
// that is not PEM fails at validation with the param's name.
func ValidateTLS(p *component.Params, urlTLS bool) error {
	on := urlTLS || p.Bool("tls")
	var errs []error
	if !on {
		for _, k := range tlsParams {
			if p.Has(k) {
				errs = append(errs, p.Errorf(k, "%s applies only with tls: true (or a TLS URL scheme)", k))
			}
		}
		return errors.Join(errs...)
	}
	if p.Has("tls_cert_file") != p.Has("tls_key_file") {
		if p.Has("tls_cert_file") {
			errs = append(errs, p.Errorf("tls_key_file", "tls_cert_file needs tls_key_file"))
		} else {
			errs = append(errs, p.Errorf("tls_cert_file", "tls_key_file needs tls_cert_file"))
		}
		return errors.Join(errs...)
	}
	if _, err := caPool(p.String("tls_ca_file")); err != nil {
		errs = append(errs, p.Errorf("tls_ca_file", "%v", err))
	}
	if p.Has("tls_cert_file") {
		if _, err := tls.LoadX509KeyPair(p.String("tls_cert_file"), p.String("tls_key_file")); err != nil {
			errs = append(errs, p.Errorf("tls_cert_file", "client certificate: %v", err))
		}
	}
	return errors.Join(errs...)
}

func caPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// TLSConfig is the client TLS configuration the params ask for, or nil
// when TLS is off (urlTLS: the URL's scheme asks for it).
func TLSConfig(p *component.Params, urlTLS bool) (*tls.Config, error) {
	if !urlTLS && !p.Bool("tls") {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: p.String("tls_server_name"),
		InsecureSkipVerify: p.Bool("tls_insecure_skip_verify")} //nolint:gosec // an explicit, documented opt-in
	pool, err := caPool(p.String("tls_ca_file"))
	if err != nil {
		return nil, err
	}
	c.RootCAs = pool
	if p.Has("tls_cert_file") {
		cert, err := tls.LoadX509KeyPair(p.String("tls_cert_file"), p.String("tls_key_file"))
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
