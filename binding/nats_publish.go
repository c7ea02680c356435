package binding

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/svcerr"
)

// natsPublish is the nats-publish output.
type natsPublish struct {
	name    string
	subject template
	js      bool
	request bool
	headers map[string]string
	timeout time.Duration
	nc      *nats.Conn
	bus     *pubsub.Bus
}

func newNATSPublish(name string, c *NATSPublishConfig, d *Deps) (*natsPublish, error) {
	o := &natsPublish{name: name, js: c.JetStream, request: c.Request, headers: c.Headers, timeout: c.Timeout}
	if c.Subject == "" {
		return nil, required("subject")
	}
	var err error
	if o.subject, err = parseTemplate(c.Subject); err != nil {
		return nil, fieldErr("subject", err)
	}
	if s := strings.Join(o.subject.parts, "x"); strings.ContainsAny(s, " \t\r\n*>") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return nil, invalid("subject", "%q is not a subject to publish on", c.Subject)
	}
	if o.timeout == 0 {
		o.timeout = 10 * time.Second
	}
	if o.timeout < 0 {
		return nil, invalid("timeout", "must not be negative")
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			return nil, invalid("headers", "%q is not a header name", k)
		}
	}
	switch {
	case c.JetStream && c.Request:
		return nil, invalid("request", "not with jetstream: true")
	case c.JetStream:
		if o.bus = d.Bus; o.bus == nil {
			return nil, invalid("jetstream", "Deps.Bus is not set")
		}
	default:
		if o.nc = d.nats(); o.nc == nil {
			return nil, invalid("subject", "core NATS: neither Deps.NATS nor Deps.Bus is set")
		}
	}
	return o, nil
}

// Name implements Output.
func (o *natsPublish) Name() string { return o.name }

// Invoke implements Output. Core publishes return once the message is flushed to the
// server; JetStream publishes once the stream stored it (a repeated id within the
// stream's duplicate window is stored once); requests return the reply.
func (o *natsPublish) Invoke(ctx context.Context, r Request) (Response, error) {
	subject, err := o.subject.fill(r.Metadata, subjectToken)
	if err != nil {
		return Response{}, fmt.Errorf("binding %s: subject: %w", o.name, err)
	}
	hdr := make(map[string]string, len(r.Metadata)+len(o.headers))
	for k, v := range r.Metadata {
		if !isReserved(k) && !strings.ContainsAny(k, " \t\r\n:") && !strings.ContainsAny(v, "\r\n") {
			hdr[k] = v
		}
	}
	maps.Copy(hdr, o.headers)
	id := r.Metadata[MetaID]
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	md := map[string]string{"subject": subject}
	if o.js {
		m := &pubsub.Message{ID: id, Subject: subject, Data: r.Data, Headers: hdr}
		if ct, ok := hdr["content-type"]; ok {
			m.ContentType = ct
			delete(hdr, "content-type")
		}
		if err := o.bus.Publish(ctx, m); err != nil {
			return Response{}, natsError(o.name, subject, err)
		}
		md["id"] = m.ID
		return Response{Metadata: md}, nil
	}
	msg := nats.NewMsg(subject)
	msg.Data = r.Data
	for k, v := range hdr {
		msg.Header.Set(k, v)
	}
	if id != "" {
		msg.Header.Set(nats.MsgIdHdr, id)
	}
	if natsCarrier(msg.Header).Get("traceparent") == "" {
		observe.Propagator().Inject(ctx, natsCarrier(msg.Header))
	}
	if o.request {
		reply, err := o.nc.RequestMsgWithContext(ctx, msg)
		if err != nil {
			return Response{}, natsError(o.name, subject, err)
		}
		for k, vs := range reply.Header {
			if len(vs) > 0 {
				md[strings.ToLower(k)] = vs[0]
			}
		}
		if k := reply.Header.Get(HeaderErrorKind); k != "" {
			kind, _ := svcerr.ParseKind(k)
			return Response{Data: reply.Data, Metadata: md}, svcerr.Errorf(kind, "binding %s: %s: %s", o.name, subject, reply.Header.Get(HeaderError))
		}
		return Response{Data: reply.Data, Metadata: md}, nil
	}
	if err := o.nc.PublishMsg(msg); err != nil {
		return Response{}, natsError(o.name, subject, err)
	}
	if err := o.nc.FlushWithContext(ctx); err != nil {
		return Response{}, natsError(o.name, subject, err)
	}
	return Response{Metadata: md}, nil
}

// isReserved reports whether metadata key k is not sent as a header: "id" travels as
// the message id, the others describe the source event.
func isReserved(k string) bool {
	switch k {
	case MetaID, MetaBinding, MetaSubject, MetaTime:
		return true
	}
	return false
}

// natsError classifies a publish error: bad subjects and oversized payloads cannot be
// fixed by a retry; timeouts and cancellation keep their kinds; everything else is
// unavailable.
func natsError(name, subject string, err error) error {
	kind := svcerr.Unavailable
	switch {
	case errors.Is(err, nats.ErrBadSubject), errors.Is(err, nats.ErrMaxPayload):
		kind = svcerr.InvalidArgument
	case errors.Is(err, context.Canceled):
		kind = svcerr.Canceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		kind = svcerr.DeadlineExceeded
	}
	return svcerr.Wrap(kind, fmt.Sprintf("binding %s: publish %s", name, subject), err)
}
