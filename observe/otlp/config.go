package otlp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Defaults, the same as those of go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp.
const (
	// DefaultEndpointURL is where [NewHTTPExporter] posts spans when neither the
	// environment nor an option says otherwise.
	DefaultEndpointURL = "http://localhost:4318/v1/traces"
	// DefaultGRPCEndpointURL is where [NewGRPCExporter] sends spans when neither the
	// environment nor an option says otherwise: plain gRPC to port 4317.
	DefaultGRPCEndpointURL = "http://localhost:4317"
	// DefaultTimeout bounds each attempt of an export.
	DefaultTimeout = 10 * time.Second

	tracesPath      = "/v1/traces"
	envPrefix       = "OTEL_EXPORTER_OTLP_"
	maxRequestSize  = 64 << 20 // uncompressed, as otlptracehttp
	maxResponseSize = 4 << 20  // read at most this much of a response
)

// RetryConfig says how an export is retried after a retryable failure: HTTP 429, 502,
// 503 or 504, or no response at all. The wait before each retry grows exponentially from
// InitialInterval by a factor of 1.5 with ±50% jitter, up to MaxInterval, or is the
// server's Retry-After if that is longer. Retrying stops when the next wait would end
// after MaxElapsedTime from the first attempt (zero: no such bound) or after the
// export's context deadline. A zero InitialInterval or MaxInterval is that of
// [DefaultRetryConfig].
type RetryConfig struct {
	// Enabled turns retries on; with it off every export makes a single attempt.
	Enabled bool
	// InitialInterval is the wait before the first retry.
	InitialInterval time.Duration
	// MaxInterval caps the exponential wait (not a Retry-After).
	MaxInterval time.Duration
	// MaxElapsedTime bounds the time from the first attempt to the last.
	MaxElapsedTime time.Duration
}

// DefaultRetryConfig returns the retry configuration exporters have unless [WithRetry]
// replaces it: the defaults of otlptracehttp (5s initial, 30s maximum interval, one
// minute in all).
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{Enabled: true, InitialInterval: 5 * time.Second, MaxInterval: 30 * time.Second, MaxElapsedTime: time.Minute}
}

// Option configures [NewHTTPExporter] or [NewGRPCExporter]. Options take precedence over
// the environment.
type Option func(*config)

// config is the resolved configuration of an Exporter.
type config struct {
	grpc     bool     // the configuration of a gRPC exporter
	endpoint *url.URL // for gRPC: the scheme (http, https or none) and the host
	insecure bool     // OTEL_EXPORTER_OTLP_INSECURE, for a gRPC endpoint without a scheme
	headers  map[string]string
	timeout  time.Duration
	gzip     bool
	tls      *tls.Config
	client   *http.Client
	retry    RetryConfig

	getenv   func(string) string
	readFile func(string) ([]byte, error)
	err      error // the first invalid option
}

// WithEndpointURL sets the URL spans are posted to, used as is (no /v1/traces is
// appended; an empty path is "/"). It must be an http or https URL. For
// [NewGRPCExporter] the scheme says whether the connection is plain (http) or TLS (https)
// and the path is ignored.
func WithEndpointURL(rawURL string) Option {
	return func(c *config) {
		u, err := parseEndpoint(rawURL, false)
		if c.grpc && err == nil {
			u, err = grpcEndpoint(u), nil
		}
		if err != nil {
			c.setErr(fmt.Errorf("otlp: WithEndpointURL %q: %w", rawURL, err))
			return
		}
		c.endpoint = u
	}
}

// WithHeaders sets the HTTP headers sent with every export, replacing those of the
// environment.
func WithHeaders(headers map[string]string) Option {
	return func(c *config) { c.headers = maps.Clone(headers) }
}

// WithHTTPClient sets the HTTP client exports use. The client's own transport then
// decides TLS, proxies and connection reuse, and TLS settings from the environment or
// [WithTLSClientConfig] are not applied to it. [NewGRPCExporter] refuses it.
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) { c.client = client }
}

// WithTimeout bounds each attempt of an export; zero means no bound other than the
// export's context.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithGzip turns gzip compression of request bodies (of gRPC messages) on or off.
func WithGzip(on bool) Option {
	return func(c *config) { c.gzip = on }
}

// WithTLSClientConfig sets the TLS configuration for an https endpoint (for gRPC, also
// an endpoint without a scheme that is not insecure), replacing the one the certificate
// variables of the environment build.
func WithTLSClientConfig(cfg *tls.Config) Option {
	return func(c *config) { c.tls = cfg.Clone() }
}

// WithRetry replaces [DefaultRetryConfig].
func WithRetry(rc RetryConfig) Option {
	return func(c *config) { c.retry = rc }
}

// withEnv makes the exporter read the environment through getenv and files through
// readFile, for tests.
func withEnv(getenv func(string) string, readFile func(string) ([]byte, error)) Option {
	return func(c *config) {
		c.getenv = getenv
		if readFile != nil {
			c.readFile = readFile
		}
	}
}

func (c *config) setErr(err error) {
	if c.err == nil {
		c.err = err
	}
}

// newConfig resolves the defaults, the environment and opts, in that order of
// increasing precedence, for an HTTP exporter or, with grpc, a gRPC one.
func newConfig(opts []Option, grpc bool) (config, error) {
	c := config{grpc: grpc, getenv: os.Getenv, readFile: os.ReadFile}
	// withEnv must act before the environment is read, so apply options twice: once
	// for it, then again over the environment.
	for _, o := range opts {
		o(&c)
	}
	getenv, readFile := c.getenv, c.readFile
	c = config{
		grpc:     grpc,
		timeout:  DefaultTimeout,
		retry:    DefaultRetryConfig(),
		getenv:   getenv,
		readFile: readFile,
	}
	c.endpoint, _ = url.Parse(DefaultEndpointURL)
	if grpc {
		c.endpoint, _ = url.Parse(DefaultGRPCEndpointURL)
	}
	if err := c.fromEnv(); err != nil {
		return config{}, err
	}
	for _, o := range opts {
		o(&c)
	}
	if c.err != nil {
		return config{}, c.err
	}
	if d := DefaultRetryConfig(); c.retry.Enabled {
		if c.retry.InitialInterval <= 0 {
			c.retry.InitialInterval = d.InitialInterval
		}
		if c.retry.MaxInterval <= 0 {
			c.retry.MaxInterval = d.MaxInterval
		}
	}
	if !c.secure() && c.tls != nil {
		return config{}, fmt.Errorf("otlp: the endpoint %s is plain HTTP but a TLS configuration is set", c.target())
	}
	if grpc && c.client != nil {
		return config{}, errors.New("otlp: WithHTTPClient is for an HTTP exporter, not a gRPC one")
	}
	return c, nil
}

// secure reports whether the exporter connects with TLS: an https endpoint or, for gRPC,
// an endpoint without a scheme that is not insecure.
func (c *config) secure() bool {
	return c.endpoint.Scheme == "https" || (c.endpoint.Scheme == "" && !c.insecure)
}

// target is the endpoint as errors name it: the URL, or host:port for gRPC.
func (c *config) target() string {
	if c.grpc {
		return c.endpoint.Host
	}
	return c.endpoint.String()
}

// fromEnv reads the OTEL_EXPORTER_OTLP_* variables the way otlptracehttp does, except
// that an invalid value is an error rather than a logged and ignored one. Of a general
// variable and its TRACES_ variant, the TRACES_ one wins.
func (c *config) fromEnv() error {
	for _, name := range []string{"ENDPOINT", "TRACES_ENDPOINT"} {
		if v, ok := c.env(name); ok {
			var (
				u   *url.URL
				err error
			)
			if c.grpc {
				u, err = parseGRPCEndpoint(v)
			} else {
				u, err = parseEndpoint(v, name == "ENDPOINT")
			}
			if err != nil {
				return envErr(name, v, err)
			}
			c.endpoint = u
		}
	}
	for _, name := range []string{"INSECURE", "TRACES_INSECURE"} {
		if v, ok := c.env(name); ok && c.grpc {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return envErr(name, v, errors.New(`want "true" or "false"`))
			}
			c.insecure = b
		}
	}
	for _, name := range []string{"HEADERS", "TRACES_HEADERS"} {
		if v, ok := c.env(name); ok {
			h, err := parseHeaders(v)
			if err != nil {
				return envErr(name, v, err)
			}
			c.headers = h
		}
	}
	for _, name := range []string{"TIMEOUT", "TRACES_TIMEOUT"} {
		if v, ok := c.env(name); ok {
			ms, err := strconv.Atoi(v)
			if err != nil || ms < 0 {
				return envErr(name, v, errors.New("want a whole number of milliseconds"))
			}
			c.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	for _, name := range []string{"COMPRESSION", "TRACES_COMPRESSION"} {
		if v, ok := c.env(name); ok {
			switch v {
			case "gzip":
				c.gzip = true
			case "none":
				c.gzip = false
			default:
				return envErr(name, v, errors.New(`want "gzip" or "none"`))
			}
		}
	}
	var roots *x509.CertPool
	for _, name := range []string{"CERTIFICATE", "TRACES_CERTIFICATE"} {
		if v, ok := c.env(name); ok {
			pem, err := c.readFile(v)
			if err != nil {
				return envErr(name, v, err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return envErr(name, v, errors.New("no PEM certificate in the file"))
			}
		}
	}
	var certs []tls.Certificate
	for _, prefix := range []string{"", "TRACES_"} {
		certName, keyName := prefix+"CLIENT_CERTIFICATE", prefix+"CLIENT_KEY"
		certFile, okCert := c.env(certName)
		keyFile, okKey := c.env(keyName)
		switch {
		case !okCert && !okKey:
			continue
		case !okKey:
			return fmt.Errorf("otlp: %s%s is set but %s%s is not", envPrefix, certName, envPrefix, keyName)
		case !okCert:
			return fmt.Errorf("otlp: %s%s is set but %s%s is not", envPrefix, keyName, envPrefix, certName)
		}
		certPEM, err := c.readFile(certFile)
		if err != nil {
			return envErr(certName, certFile, err)
		}
		keyPEM, err := c.readFile(keyFile)
		if err != nil {
			return envErr(keyName, keyFile, err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return envErr(certName, certFile, err)
		}
		certs = []tls.Certificate{cert}
	}
	if roots != nil || certs != nil {
		c.tls = &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12}
	}
	return nil
}

// env returns the trimmed value of OTEL_EXPORTER_OTLP_<name> and whether it is
// non-empty; an empty variable counts as unset.
func (c *config) env(name string) (string, bool) {
	v := strings.TrimSpace(c.getenv(envPrefix + name))
	return v, v != ""
}

// envErr is the one-line error for an invalid value v of OTEL_EXPORTER_OTLP_<name>.
func envErr(name, v string, err error) error {
	return fmt.Errorf("otlp: %s%s %q: %w", envPrefix, name, v, err)
}

// parseEndpoint parses an endpoint URL. A base URL (OTEL_EXPORTER_OTLP_ENDPOINT) gets
// /v1/traces appended to its path; a signal URL is used as is, with "/" for an empty
// path. As in otlptracehttp, only the scheme, host and path are kept.
func parseEndpoint(v string, base bool) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, errors.New("want an http:// or https:// URL")
	}
	if u.Host == "" {
		return nil, errors.New("want a host in the URL")
	}
	p := u.Path
	if base {
		p = path.Join(p, tracesPath)
	} else if strings.TrimSpace(p) == "" || p == "." {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return &url.URL{Scheme: scheme, Host: u.Host, Path: p}, nil
}

// parseGRPCEndpoint parses the endpoint of a gRPC exporter, as otlptracegrpc does: an
// http:// or https:// URL, whose scheme says whether the connection is plain or TLS and
// whose path is ignored, or host:port, TLS unless OTEL_EXPORTER_OTLP_INSECURE is true.
func parseGRPCEndpoint(v string) (*url.URL, error) {
	if strings.Contains(v, "://") {
		u, err := parseEndpoint(v, false)
		if err != nil {
			return nil, err
		}
		return grpcEndpoint(u), nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" || port == "" {
		return nil, errors.New("want host:port or an http:// or https:// URL")
	}
	return &url.URL{Host: v}, nil
}

// grpcEndpoint keeps the scheme and host of u, which is all a gRPC exporter uses.
func grpcEndpoint(u *url.URL) *url.URL { return &url.URL{Scheme: u.Scheme, Host: u.Host} }

// parseHeaders parses comma-separated key=value pairs whose values are URL-encoded
// (the W3C baggage format the OTLP exporter specification uses). Keys and values are
// trimmed; empty pairs are skipped.
func parseHeaders(v string) (map[string]string, error) {
	h := make(map[string]string)
	for pair := range strings.SplitSeq(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", strings.TrimSpace(pair))
		}
		k = strings.TrimSpace(k)
		if !validHeaderName(k) {
			return nil, fmt.Errorf("invalid header name %q", k)
		}
		val, err := url.PathUnescape(val)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		h[k] = strings.TrimSpace(val)
	}
	return h, nil
}

// validHeaderName reports whether k is an HTTP token (RFC 9110).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
