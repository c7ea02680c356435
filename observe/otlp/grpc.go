package otlp

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// exportMethod is the full name of the OTLP trace service's only method.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// grpcSender is the connection over which a gRPC exporter sends its
// ExportTraceServiceRequest messages, already encoded, and the metadata it sends with them.
type grpcSender struct {
	cc *grpcgo.ClientConn
	md metadata.MD // the configured headers
}

// NewGRPCExporter returns an exporter that sends spans to an OTLP/gRPC endpoint (the
// TraceService/Export method), configured by opts and, like
// go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc, by the standard
// environment variables (a TRACES_ variant takes precedence over the general one, and
// options over both):
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: an http:// URL
//     (plain gRPC) or https:// URL (TLS), whose path is ignored, or host:port. The default
//     is [DefaultGRPCEndpointURL].
//   - OTEL_EXPORTER_OTLP_INSECURE, OTEL_EXPORTER_OTLP_TRACES_INSECURE: "true" for plain
//     gRPC to an endpoint given as host:port, which is TLS otherwise.
//   - OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS: comma-separated
//     key=value pairs with URL-encoded values, sent as request metadata.
//   - OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: the bound of each
//     attempt in milliseconds; 10000 by default.
//   - OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "gzip" or
//     "none" (the default).
//   - OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
//     OTEL_EXPORTER_OTLP_CLIENT_KEY and their TRACES_ variants: PEM files of the CA to
//     trust and of the client certificate and key to present.
//
// An invalid value is an error naming the variable. Failures with the codes the OTLP
// specification calls retryable (Unavailable, DeadlineExceeded, Aborted, OutOfRange,
// DataLoss, Cancelled, and ResourceExhausted when the collector sends RetryInfo) are
// retried as [RetryConfig] says, waiting at least the RetryInfo's delay.
//
// Unlike otlptracegrpc, the exporter registers no gRPC compressor: a process that links
// it does not advertise gzip (grpc-accept-encoding) on every other gRPC call it makes,
// and its servers do not accept gzip-compressed requests because of it. Gzip, when
// configured, is set on the exporter's own connection. The connection is made at the
// first export, so a collector that is not up yet is no error here. ctx is not used
// after the call.
func NewGRPCExporter(ctx context.Context, opts ...Option) (*Exporter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := newConfig(opts, true)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if cfg.secure() {
		tc := cfg.tls
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc)
	}
	dial := []grpcgo.DialOption{
		grpcgo.WithTransportCredentials(creds),
		grpcgo.WithUserAgent(userAgent),
		grpcgo.WithDefaultCallOptions(grpcgo.ForceCodecV2(rawCodec{})),
	}
	if cfg.gzip {
		// The connection's own compressor: encoding.RegisterCompressor, which
		// UseCompressor needs, would change every gRPC call of the process (see above).
		dial = append(dial,
			grpcgo.WithCompressor(grpcgo.NewGZIPCompressor()),     //nolint:staticcheck // see above
			grpcgo.WithDecompressor(grpcgo.NewGZIPDecompressor())) //nolint:staticcheck // see above
	}
	cc, err := grpcgo.NewClient(cfg.endpoint.Host, dial...)
	if err != nil {
		return nil, fmt.Errorf("otlp: gRPC endpoint %s: %w", cfg.endpoint.Host, err)
	}
	md := metadata.MD{}
	for k, v := range cfg.headers {
		md.Set(k, v) // lowercases the key
	}
	e := &Exporter{
		url:     cfg.target(),
		timeout: cfg.timeout,
		gzip:    cfg.gzip,
		retry:   cfg.retry,
		free:    make(chan *encoder, freeEncoders),
		grpc:    &grpcSender{cc: cc, md: md},
	}
	e.stopped, e.stop = context.WithCancelCause(context.Background())
	return e, nil
}

// invoke makes one attempt of a gRPC exporter. It reports whether a failure is worth
// retrying and the wait the collector asked for with RetryInfo.
func (e *Exporter) invoke(ctx context.Context, _ *encoder, payload []byte) (retry bool, after time.Duration, err error) {
	actx := ctx
	if e.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	if len(e.grpc.md) > 0 {
		actx = metadata.NewOutgoingContext(actx, e.grpc.md)
	}
	var resp rawMessage
	err = e.grpc.cc.Invoke(actx, exportMethod, &rawMessage{b: payload}, &resp)
	if err == nil {
		return false, 0, partialSuccess(resp.b)
	}
	st := status.Convert(err)
	err = fmt.Errorf("otlp: export to %s: %s: %s", e.url, st.Code(), oneLine(st.Message(), "(no message)"))
	if ctx.Err() != nil {
		// The export itself is over (its deadline, or Shutdown).
		if cause := context.Cause(ctx); cause != ctx.Err() {
			return false, 0, fmt.Errorf("%w: %w", err, cause)
		}
		return false, 0, err
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return true, retryDelay(st), err
	case codes.ResourceExhausted:
		// Retryable only when the collector says when (the OTLP specification).
		if d := retryDelay(st); d > 0 {
			return true, d, err
		}
		return false, 0, err
	default:
		return false, 0, err
	}
}

// retryDelay is the delay of the RetryInfo detail of st, or 0 if it has none.
func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().IsValid() {
			return max(ri.GetRetryDelay().AsDuration(), 0)
		}
	}
	return 0
}

// rawMessage is a protobuf message already in wire format: the request the encoder
// wrote, or the response as it came.
type rawMessage struct{ b []byte }

// rawCodec passes rawMessage bytes through. It is set per call (ForceCodecV2), not
// registered, and named "proto" so that requests carry the content type collectors
// expect (application/grpc+proto).
type rawCodec struct{}

// Marshal copies the request into buffers of grpc-go's pool, which grpc-go frees once it
// has written them: the encoder's buffer can then be reused as soon as the call returns,
// even if the call failed before the request was written.
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("otlp: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.Copy(m.b, mem.DefaultBufferPool())}, nil
}

// Unmarshal keeps a copy of the response.
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("otlp: cannot unmarshal into %T", v)
	}
	m.b = data.Materialize()
	return nil
}

// Name is the content subtype.
func (rawCodec) Name() string { return "proto" }
